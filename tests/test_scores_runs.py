"""Scores of real runs carry their protocol: `results.json` (`protocol`, `test_sacrebleu`), `rvlf evaluate
--tokenize`, and `rvlf report` on partial runs (report case C16) and with `--tokenize` (issue #30)."""

from __future__ import annotations

import json
import shutil

import pytest
import sacrebleu

from helpers import cli_output, tiny_runs
from rvlf.text.files import read_translations
from rvlf.text.metrics import corpus_scores

SLRT_EN = "slrt:en(whitespace)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0"
STD_EN = "sacrebleu:en|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(manifest, stage-1 run, SFT run) of the toy corpus, a few steps each."""
    return tiny_runs(tmp_path_factory.mktemp("scores"), sft_steps=1)


def _tsv(run):
    trans = read_translations(run / "test_translations.tsv")
    return [h for h, _ in trans.values()], [r for _, r in trans.values()]


def test_results_json_records_protocol_and_standard_bleu(runs):
    _, s1, sft = runs
    for run in (s1, sft):
        results = json.loads((run / "results.json").read_text(encoding="utf-8"))
        hyps, refs = _tsv(run)
        # the protocol's numbers are the scores of the written translations, as before
        assert results["test"]["bleu4"] == pytest.approx(corpus_scores(hyps, refs, "en")["bleu4"], abs=1e-9)
        assert results["protocol"]["tokenize"] == "slrt" and results["protocol"]["signature"] == SLRT_EN
        assert results["protocol"]["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")
        std = results["test_sacrebleu"]
        assert std["tokenize"] == "13a" and std["signature"] == STD_EN
        for n in range(1, 5):
            theirs = sacrebleu.metrics.BLEU(tokenize="13a", max_ngram_order=n).corpus_score(hyps, [refs]).score
            assert abs(std[f"bleu{n}"] - theirs) < 1e-6


def test_evaluate_prints_signature_and_standard_bleu(runs, tmp_path):
    _, s1, _ = runs
    rc, out, err = cli_output("evaluate", "--checkpoint", s1 / "best", "--num-beams", "1",
                              "--translations", tmp_path / "t.tsv")
    assert rc == 0, err
    slrt = json.loads(out.strip().splitlines()[-1])
    assert slrt["tokenize"] == "slrt" and slrt["signature"] == SLRT_EN
    assert slrt["sacrebleu"]["tokenize"] == "13a" and slrt["sacrebleu"]["signature"] == STD_EN
    hyps, refs = _tsv_file(tmp_path / "t.tsv")
    assert slrt["sacrebleu"]["bleu4"] == round(sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score, 2)
    # --tokenize intl: every metric on intl's tokens, the same translations
    rc, out, err = cli_output("evaluate", "--checkpoint", s1 / "best", "--num-beams", "1", "--tokenize", "intl")
    assert rc == 0, err
    intl = json.loads(out.strip().splitlines()[-1])
    assert intl["tokenize"] == "intl" and "tok:intl" in intl["signature"]
    assert intl["bleu4"] == round(sacrebleu.corpus_bleu(hyps, [refs], tokenize="intl").score, 2)
    assert intl["sacrebleu"] == slrt["sacrebleu"]
    rc, out, err = cli_output("evaluate", "--checkpoint", s1 / "best", "--tokenize", "flores200")
    assert rc == 2 and err.count("\n") == 1 and "flores200" in err


def _tsv_file(path):
    trans = read_translations(path)
    return [h for h, _ in trans.values()], [r for _, r in trans.values()]


def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.pt", "*.bin"))
    return dst


def test_report_lists_crashed_and_incomplete_runs_and_writes_the_rest(runs, tmp_path):
    """C16: p1 without results.json, p2 with it cut in half, p3 with the translations cut mid-line,
    p4 without `bleu2`; variant: p5 whose `test` holds null for `rouge_l` and p6 that is not a folder."""
    _, s1, sft = runs
    s1c, sftc = _copy(s1, tmp_path / "s1"), _copy(sft, tmp_path / "sft")
    p = {n: _copy(sft, tmp_path / f"p{n}") for n in range(1, 6)}
    (p[1] / "results.json").unlink()
    text = (p[2] / "results.json").read_text()
    (p[2] / "results.json").write_text(text[: len(text) // 2])
    tsv = (p[3] / "test_translations.tsv").read_text()
    (p[3] / "test_translations.tsv").write_text(tsv[: len(tsv) // 2 + 3])
    for n, change in ((4, lambda t: t.pop("bleu2")), (5, lambda t: t.update(rouge_l=None))):
        results = json.loads((p[n] / "results.json").read_text())
        change(results["test"])
        (p[n] / "results.json").write_text(json.dumps(results))
    out = tmp_path / "rep.md"
    argv = ["report", s1c, sftc, *p.values(), tmp_path / "p6", "--out", out, "--resamples", "100"]
    rc, stdout, err = cli_output(*argv)
    assert rc == 0, err
    report = out.read_text(encoding="utf-8")
    left_out = report.split("## Runs left out or incomplete")[1]
    assert f"{p[1]}: not a finished run (no results.json)" in left_out
    assert f"{p[2] / 'results.json'}: not valid JSON" in left_out
    assert f"{p[4]}: results.json lacks bleu2 (shown as –)" in left_out
    assert f"{p[5]}: results.json lacks rouge_l (shown as –)" in left_out
    assert f"{tmp_path / 'p6'}: not found" in left_out
    # p3's row is there; its translations file, cut mid-line, is named and no difference is tested for it
    assert f"{p[3] / 'test_translations.tsv'}:" in left_out and "no differences tested for this run" in left_out
    for line in (f"{p[1]}: not a finished run", f"{p[4]}: results.json lacks bleu2", str(tmp_path / "p6")):
        assert f"rvlf report: warning: {line}" in err
    assert "6 run(s) left out or incomplete" in err and "internal error" not in err and "Traceback" not in err
    # the finished runs are all in the tables; the incomplete ones with – in their missing column
    sft_test = json.loads((sftc / "results.json").read_text())["test"]
    rows = [line for line in report.splitlines() if line.startswith("| SLT-SFT |") and "p4" in line]
    assert rows and [c.strip() for c in rows[0].split("|")[1:-1]][3] == "–"  # Method, ROUGE, B@1, B@2
    assert f"{sft_test['bleu4']:.2f}" in report and "Stage 1 (VLP decoder)" in report
    assert f"Signature: `{SLRT_EN}`" in report
    rc, _, _ = cli_output(*argv, "--strict")
    assert rc == 1 and out.read_text(encoding="utf-8") == report
    # an `rvlf demo` folder (a summary results.json, one run a stage below it) is named as such
    demo = tmp_path / "demo"
    _copy(sft, demo / "sft")
    (demo / "results.json").write_text(json.dumps({"vlp": {}, "slt_sft": {}}))
    rc, _, err = cli_output("report", demo, "--out", tmp_path / "rep2.md", "--resamples", "100")
    assert rc == 2 and f"{demo}: an `rvlf demo` folder, not one stage's run: pass its stage runs ({demo / 'sft'})" in err


def test_report_says_where_it_wrote_and_prints_the_report_only_with_out_dash(runs, tmp_path, monkeypatch):
    """The trial saw `rvlf report` print the whole report to stdout as well as write it. It writes
    the file and prints one line (where, how many runs); `--out -` prints the report itself and
    writes nothing. Variant: a run left out is counted in that line (and warned on stderr)."""
    _, s1, sft = runs
    s1c, sftc = _copy(s1, tmp_path / "s1"), _copy(sft, tmp_path / "sft")
    out = tmp_path / "rep.md"
    rc, stdout, err = cli_output("report", s1c, sftc, tmp_path / "gone", "--out", out, "--resamples", "20")
    assert rc == 0 and stdout == f"rvlf report: wrote {out}: 2 run(s) of manifest (manifest.jsonl), 1 left out\n"
    assert f"rvlf report: warning: {tmp_path / 'gone'}: not found" in err
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = cli_output("report", "s1", "sft", "--out", "-", "--resamples", "20")
    assert rc == 0 and err == "" and sorted(p.name for p in tmp_path.iterdir()) == ["rep.md", "s1", "sft"]
    rc, _, _ = cli_output("report", "s1", "sft", "--resamples", "20")  # the default file, from the same folder
    assert rc == 0 and stdout == (tmp_path / "report.md").read_text(encoding="utf-8") + "\n"
    assert stdout.startswith("# RVLF results") and "| SLT-SFT |" in stdout


def test_report_tokenize_rescores_from_translations(runs, tmp_path):
    _, s1, sft = runs
    s1c, sftc = _copy(s1, tmp_path / "s1"), _copy(sft, tmp_path / "sft")
    out = tmp_path / "rep.md"
    rc, _, err = cli_output("report", s1c, sftc, "--out", out, "--resamples", "50", "--tokenize", "13a")
    assert rc == 0, err
    report = out.read_text(encoding="utf-8")
    assert f"Signature: `{STD_EN}`" in report and "--tokenize 13a" in report
    hyps, refs = _tsv(sftc)
    row = next(line for line in report.splitlines() if line.startswith("| SLT-SFT |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]  # Method, ROUGE, B@1..B@4, ...
    assert cells[1] == f"{corpus_scores(hyps, refs, 'en', tokenize='13a')['rouge_l']:.2f}"
    assert cells[2:6] == [f"{sacrebleu.metrics.BLEU(max_ngram_order=n).corpus_score(hyps, [refs]).score:.2f}"
                          for n in range(1, 5)]
    rc, _, err = cli_output("report", s1c, sftc, "--out", out, "--resamples", "50", "--tokenize", "zh")
    assert rc == 2 and err.count("\n") == 1 and "hold no Chinese character" in err  # no run fits: one line
    (s1c / "test_translations.tsv").unlink()  # nothing to rescore: listed, the rest written
    rc, _, err = cli_output("report", s1c, sftc, "--out", out, "--resamples", "50", "--tokenize", "13a")
    assert rc == 0 and f"{s1c}: no test_translations.tsv to rescore with --tokenize 13a" in err


def test_compare_of_two_tsv_does_not_hang_on_row_order(runs, tmp_path):
    """The same two systems, one of them with its rows shuffled: the same intervals and p-values (the
    bootstrap resamples the pairs sorted by id); variant: both shuffled."""
    import random

    from helpers import cli_output

    _, s1, sft = runs
    a, b = s1 / "test_translations.tsv", sft / "test_translations.tsv"

    def shuffled(path, name, seed):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(seed).shuffle(lines)
        out = tmp_path / name
        out.write_text("".join(lines), encoding="utf-8")
        return out

    results = []
    for base, system in ((a, b), (shuffled(a, "a.tsv", 1), b), (shuffled(a, "a2.tsv", 2), shuffled(b, "b2.tsv", 3))):
        rc, out, err = cli_output("compare", "--baseline", base, "--system", system, "--lang", "en", "--json",
                                  "--resamples", "200")
        assert rc == 0, err
        result = json.loads(out)
        result.pop("settings")  # names the files
        results.append(result)
    assert results[0] == results[1] == results[2] and "bleu4" in results[0]
