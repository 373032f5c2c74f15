"""Paths given as the wrong kind of thing get one line naming them, before any work: `rvlf extract --out`
a file or under a file (was `File exists (EEXIST)` / `Not a directory (ENOTDIR)`), and a `--dino` that is
a file (was a hint to download it from the hub as `hf download FILE`)."""

from __future__ import annotations

import pytest

from helpers import cli_output


def test_extract_out_that_is_a_file_or_under_a_file(fixtures_dir, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("notes\n")
    for out, says in ((afile, f"--out {afile}: is a file, not a folder"),
                      (afile / "sub" / "feats", f"--out {afile / 'sub' / 'feats'}: {afile} is a file, not a folder")):
        rc, stdout, err = cli_output("extract", fixtures_dir / "signer_58frames.mp4", "--out", out, "--no-features")
        assert (rc, stdout, err) == (2, "", f"rvlf extract: error: {says}\n"), out
    assert afile.read_text() == "notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("relative", [False, True])
def test_a_dino_that_is_a_file_is_named_without_a_hub_hint(fixtures_dir, tmp_path, monkeypatch, relative):
    (tmp_path / "dino.bin").write_bytes(b"\0" * 16)
    monkeypatch.chdir(tmp_path)
    dino = "dino.bin" if relative else str(tmp_path / "dino.bin")
    rc, _, err = cli_output("extract", fixtures_dir / "human_all_parts.png", "--out", tmp_path / "o", "--dino", dino,
                            "--device", "cpu")
    assert (rc, err) == (2, f"rvlf extract: error: {dino}: a file, not a DINOv2 model folder (give the folder that "
                            "holds its config.json and weights, or a hub id)\n")
    assert "hf download" not in err


def test_a_folder_or_file_written_under_a_file_names_the_file(tmp_path):
    """Every atomic write (run folders, exports, translations, figures): a file where a parent folder should
    be is named, instead of the OS's `File exists (EEXIST)` / `Not a directory (ENOTDIR)`."""
    from rvlf import atomic
    from rvlf.errors import WriteError

    afile = tmp_path / "afile"
    afile.write_text("notes\n")
    with pytest.raises(WriteError) as caught:
        atomic.write_text(afile / "x.tsv", "a\n", "the translations")
    assert str(caught.value) == (f"{afile / 'x.tsv'}: cannot write the translations: {afile} is a file, not a folder; "
                                 "the previous file, if any, is unchanged")
    with pytest.raises(WriteError) as caught:
        atomic.write_dir(afile / "a" / "b", lambda tmp: None, "the model folder")
    assert f": cannot write the model folder: {afile} is a file, not a folder;" in str(caught.value)
    assert afile.read_text() == "notes\n"


def test_a_run_folder_under_a_file_is_one_line(tmp_path):
    """The CLI: `rvlf pretrain --out afile/run` (the run folder is claimed before any data is read)."""
    from helpers import REPO

    afile = tmp_path / "afile"
    afile.write_text("")
    rc, _, err = cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", afile / "run",
                            "--max-steps", "1")
    assert (rc, err) == (1, f"rvlf pretrain: error: {afile / 'run'}: cannot write the run folder: {afile} is a file, "
                            "not a folder\n")
