"""`rvlf demo --quick`: the main job end to end on a tiny corpus (all three stages, real models)."""

from __future__ import annotations

import json

from conftest import cli
from rvlf.demo import METRICS, ROWS, grpo_dev_line


def test_quick_demo_runs_all_stages_and_writes_the_results(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["demo", "--quick", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    for key, name in ROWS:
        assert set(METRICS) <= set(results[key]), key
        assert all(0.0 <= results[key][m] <= 100.0 for m in METRICS)
        assert f"| {name} |" in stdout
    dev = results["dev"]
    assert dev["slt_grpo_baseline"]["reward"] >= 0.0
    # the GRPO row is its best checkpoint's dev scores: never below the SFT baseline it started from
    assert (dev["slt_grpo"]["bleu4"], dev["slt_grpo"]["reward"]) >= (dev["slt_grpo_baseline"]["bleu4"],
                                                                     dev["slt_grpo_baseline"]["reward"])
    assert "SLT-GRPO on dev: mean reward" in stdout
    md = (out / "results.md").read_text()
    assert "| SLT-GRPO |" in md and "Example translations" in md and "| Reference |" in md
    for stage in ("pretrain", "sft", "grpo"):
        assert (out / stage / "learning_curve.png").stat().st_size > 1000
        assert (out / stage / "best" / "model.safetensors").is_file()
    assert set(results["seconds"]) >= {"corpus", "pretrain", "sft", "grpo", "total"}


def test_grpo_dev_line_reports_before_and_after():
    dev = {"slt_grpo_baseline": {"reward": 40.27, "bleu4": 31.3}, "slt_grpo": {"reward": 41.42, "bleu4": 32.5}}
    line = grpo_dev_line(dev)
    assert "40.27 (SLT-SFT, before) -> 41.42" in line and "31.30 -> 32.50" in line
    assert grpo_dev_line({"slt_grpo": None}) == ""
