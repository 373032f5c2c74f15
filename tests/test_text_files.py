"""Every text rvlf reads decodes UTF-8 with an optional BOM: sentence files, run translations, and
the real dataset annotation layouts (`rvlf.data.readers`) saved with a BOM."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import write_toy_corpus
from rvlf.data.readers import read_dataset
from rvlf.errors import InputFileError
from rvlf.text.files import read_lines, read_translations

BOM = b"\xef\xbb\xbf"


def test_read_lines_bom_crlf_and_unicode_line_breaks(tmp_path):
    f = tmp_path / "h.txt"
    f.write_bytes(BOM + "eins\u2028zwei\r\ndrei\x85vier\n\n".encode())
    # only \n ends a sentence (like `wc -l`); U+2028 / U+0085 stay inside, as whitespace to the protocol
    assert read_lines(f) == ["eins\u2028zwei", "drei\x85vier", ""]


def test_read_translations_of_a_run(tmp_path):
    f = tmp_path / "test_translations.tsv"
    f.write_bytes(BOM + "s1\tguten abend\tguten abend .\ns2\t\thallo\n".encode())
    assert read_translations(f) == {"s1": ("guten abend", "guten abend ."), "s2": ("", "hallo")}
    f.write_text("s1\ta\tb\ns1\tc\td\n")
    with pytest.raises(InputFileError, match=r"test_translations.tsv:2: id 's1' appears twice"):
        read_translations(f)
    f.write_text("")
    with pytest.raises(InputFileError, match="no translations"):
        read_translations(f)


def _with_bom(src: Path, dst: Path, suffixes: tuple[str, ...]) -> Path:
    """A copy of a fixture folder whose text files start with a UTF-8 BOM."""
    shutil.copytree(src, dst)
    n = 0
    for f in dst.rglob("*"):
        if f.is_file() and f.suffix in suffixes:
            f.write_bytes(BOM + f.read_bytes())
            n += 1
    assert n, f"no {suffixes} file under {src}"
    return dst


@pytest.mark.parametrize("kind,sub,suffixes", [
    ("phoenix2014t", "phoenix2014t/PHOENIX-2014-T", (".csv",)),
    ("how2sign", "how2sign", (".csv",)),
    ("openasl", "openasl", (".tsv",)),
    ("csl-daily", "csl_daily", (".txt",)),
])
def test_dataset_annotations_saved_with_a_bom_read_the_same(fixtures_dir, tmp_path, kind, sub, suffixes):
    src = fixtures_dir / "real_formats" / sub
    if kind == "phoenix2014t":  # frames are not read; copy the annotations only
        shutil.copytree(src / "annotations", tmp_path / "plain" / "annotations")
        src = tmp_path / "plain"
    expected = _outcome(kind, src)
    got = _outcome(kind, _with_bom(src, tmp_path / "bom", suffixes))
    assert got == expected
    assert "\ufeff" not in repr(got)


def _outcome(kind: str, root: Path):
    """The samples read, or (for a layout the reader does not take yet) where and why it stopped:
    either way a BOM must change nothing."""
    try:
        return [(s.id, s.split, s.text) for s in read_dataset(kind, root)]
    except InputFileError as err:
        return Path(err.path).name, err.line, err.column, err.problem


def test_manifest_saved_with_a_bom_reads_the_same(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", n_train=3, n_dev=1, n_test=1)
    expected = read_dataset("manifest", manifest)
    manifest.write_bytes(BOM + manifest.read_bytes())
    got = read_dataset("manifest", manifest)
    assert [(s.id, s.split, s.text) for s in got] == [(s.id, s.split, s.text) for s in expected]


def test_one_line_keeps_a_generated_translation_on_its_own_line():
    from rvlf.text.files import one_line

    for sep in ("\n", "\r\n", "\t", "\u2028", "\u2029", "\x85", "\x1c", "\x0b\x0c"):
        text = one_line(f" fast{sep}cat {sep}{sep}runs ")
        assert text == "fast cat runs"
        assert len(f"name\t{text}".splitlines()) == 1 and f"name\t{text}".count("\t") == 1


def test_the_demo_reads_run_translations_with_the_strict_reader(tmp_path):
    """One `read_translations` (issue 32): the demo's significance tests and examples read each run's
    test translations through it, so a malformed line is an error naming file and line, not dropped."""
    from rvlf.runs import demo

    for run in ("pretrain", "sft"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "test_translations.tsv").write_text("s1\tthe cat\tthe cat eats\ns2\tdog\tthe dog runs\n")
    assert demo.run_translations(tmp_path, "grpo") == {}  # a stage that did not run: nothing to compare
    assert set(demo.significance(tmp_path, resamples=10)) == {"slt_sft_vs_vlp"}
    bad = tmp_path / "sft" / "test_translations.tsv"
    bad.write_text("s1\tthe cat\tthe cat eats\ns2\tdog the dog runs\n")  # a line with its tabs lost
    with pytest.raises(InputFileError, match=r"sft/test_translations.tsv:2: expected id<TAB>hypothesis<TAB>reference"):
        demo.significance(tmp_path, resamples=10)
    bad.write_text("s1\tthe cat\tthe cat eats\ns1\tdog\tthe dog runs\n")  # variant: an id twice
    with pytest.raises(InputFileError, match=r"sft/test_translations.tsv:2: id 's1' appears twice"):
        demo.examples(tmp_path)
