"""`rvlf translate` with inputs of one name: `signer_58frames.mp4` and `signer_58frames.webm` (or a video
and its `.npz`) gave two rows with the id `signer_58frames` and no note. Each id is now unique and one
note line says which are longer. Real Holistic `.pose` files and the Uni-Sign `.pkl` of the fixtures
(no MediaPipe run), the tiny GRPO checkpoint."""

from __future__ import annotations

import json
import shutil

from helpers import cli_output
from rvlf.commands.translate import unique_ids


def test_ids_of_inputs_that_share_a_name():
    assert unique_ids(["signer_58frames.mp4", "signer_58frames.webm", "other.mp4"]) == (
        ["signer_58frames.mp4", "signer_58frames.webm", "other"],
        "inputs share a name, so these ids (first column, --json id) are longer: signer_58frames.mp4, "
        "signer_58frames.webm")
    assert unique_ids(["clips/a.mp4", "frames/"]) == (["a", "frames"], None)  # no note when nothing is shared
    # a name that is also another's longer id ends unique too; one file given twice is numbered
    assert unique_ids(["x.mp4", "x.webm", "x.mp4.npz"])[0] == ["x.mp4", "x.webm", "x.mp4.npz"]
    assert unique_ids(["x.mp4", "x.mp4"])[0] == ["x.mp4", "x.mp4#2"]


def test_translate_gives_each_input_its_own_id(tiny_grpo_run, fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(fixtures_dir / "holistic_97frames.pose", tmp_path / folder / "clip.pose")
    shutil.copy(fixtures_dir / "real_formats" / "unisign_pose_lists.pkl", tmp_path / "a" / "clip.pkl")
    inputs = ["a/clip.pose", "a/clip.pkl", "b/clip.pose", str(fixtures_dir / "holistic_130frames.pose")]
    ckpt = str(tiny_grpo_run / "best")
    rc, out, err = cli_output("translate", *inputs, "--checkpoint", ckpt, "--num-beams", "1")
    assert rc == 0, err
    ids = ["a/clip.pose", "clip.pkl", "b/clip.pose", "holistic_130frames"]  # same file name: its path as given
    assert [line.split("\t")[0] for line in out.splitlines()] == ids
    notes = [line for line in err.splitlines() if "share a name" in line]
    assert notes == ["rvlf translate: note: inputs share a name, so these ids (first column, --json id) are longer: "
                     "a/clip.pose, clip.pkl, b/clip.pose"]
    # the variant: --json, with an input that cannot be read keeping its own id
    (tmp_path / "b" / "clip.pkl").write_bytes(b"not a pickle")
    rc, out, err = cli_output("translate", "a/clip.pose", "b/clip.pkl", "--checkpoint", ckpt, "--num-beams", "1",
                              "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and [(r["id"], r["error"] is None) for r in records] == [("clip.pose", True), ("clip.pkl", False)]
    assert err.count("share a name") == 1
