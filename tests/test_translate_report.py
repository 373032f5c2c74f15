"""`rvlf translate` on the real signer video, and `rvlf report` tables from finished runs."""

from __future__ import annotations

import json

import pytest

from conftest import CHEAP, REPO, tiny_runs
from rvlf.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A toy corpus (16-dim DINOv2 features), tiny stage-1 and SFT runs, and an SFT run without DINOv2."""
    root = tmp_path_factory.mktemp("runs")
    manifest, s1, _ = tiny_runs(root, sft_steps=2)
    assert main(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--init", str(s1 / "last"), "--no-dino",
                 "--out", str(root / "sft_nodino"), "--max-steps", "1", f"data.root={manifest}",
                 "train.batch_size=4", *CHEAP]) == 0
    return root


def test_translate_real_video_with_overlay(runs, fixtures_dir, tmp_path, capsys):
    import cv2

    from rvlf.data.features import save_tiny_dinov2

    dino = save_tiny_dinov2(tmp_path / "dino16", hidden_size=16, intermediate_size=32)
    show = tmp_path / "show.mp4"
    capsys.readouterr()
    rc = main(["translate", str(fixtures_dir / "signer_58frames.mp4"), "--checkpoint", str(runs / "sft" / "last"),
               "--dino", str(dino), "--show", str(show), "--num-beams", "2"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("signer_58frames\t")
    cap = cv2.VideoCapture(str(show))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 58


def test_translate_feature_and_keypoint_files(runs, fixtures_dir, capsys):
    feature_file = next((runs / "toy" / "features").glob("*.npz"))
    capsys.readouterr()
    rc = main(["translate", str(feature_file), str(fixtures_dir / "holistic_97frames.pose"),
               "--checkpoint", str(runs / "s1" / "last"), "--num-beams", "2"])
    assert rc == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert names == [feature_file.stem, "holistic_97frames"]


def test_translate_wrong_dino_size_is_a_clear_error(runs, fixtures_dir, tmp_path, capsys):
    from rvlf.data.features import save_tiny_dinov2

    dino = save_tiny_dinov2(tmp_path / "dino32")  # 32 dims, the checkpoint was trained on 16
    rc = main(["translate", str(fixtures_dir / "human_all_parts.png"), "--checkpoint", str(runs / "sft" / "last"),
               "--dino", str(dino)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "human_all_parts.png" in err[0] and "16" in err[0]


def test_translate_missing_input(runs, tmp_path, capsys):
    rc = main(["translate", str(tmp_path / "nope.mp4"), "--checkpoint", str(runs / "s1" / "last")])
    assert rc == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_report_builds_the_tables(runs, tmp_path, capsys):
    out = tmp_path / "report.md"
    rc = main(["report", str(runs / "s1"), str(runs / "sft"), str(runs / "sft_nodino"), "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "Main results" in text and "Stage 1 (VLP decoder)" in text
    assert "| w/o DINOv2 |" in text and "| w/o RFT |" in text
    assert "DINOv2 features (Table 6)" in text and "| SLT-SFT | × | × |" in text
    sft_scores = json.loads((runs / "sft" / "results.json").read_text())["test"]
    assert f"{sft_scores['bleu1']:.2f}" in text
    assert "sft/best/config.yaml" in text or "sft/last/config.yaml" in text


def test_report_on_unfinished_run_is_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0]
