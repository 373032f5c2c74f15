"""Stages 1 and 3 under `accelerate launch` with two CPU processes (gloo), stage 2 in between.

accelerate 1.15 starts several processes only through its torchrun launcher (`--multi_gpu`);
`--cpu --num_processes 2` runs a single process. `ACCELERATE_USE_CPU=true` makes each of the two
processes take the CPU with gloo (DistributedType.MULTI_CPU), as configs/accelerate/cpu_2proc.yaml says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import REPO, launch, write_toy_corpus

CHEAP = ["train.eval_every_steps=2", "data.dev_max_samples=4", "train.num_beams=1", "train.max_new_tokens=8",
         "train.batch_size=4", "train.progress=false", "train.log_every_steps=1"]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_two_process_checkpoint(run: Path, steps: int) -> dict:
    last = run / "last"
    assert (last / "model.safetensors").is_file() and (last / "optimizer.safetensors").is_file()
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["global_step"] == steps
    assert len(state["rng"]) == 2  # both processes' RNG states, gathered to the writer
    assert not list(run.glob(".last.tmp-*")) and not list(run.glob(".best.tmp-*"))
    return state


@pytest.mark.slow
def test_stages_run_under_two_processes(tmp_path):
    from rvlf.config import load_config
    from rvlf.train import sft

    manifest = write_toy_corpus(tmp_path / "toy")  # 32 train samples: 8 batches of 4, 4 per process
    data = f"data.root={manifest}"

    pre = tmp_path / "pre"
    res = launch("pretrain", "--config", "configs/demo/pretrain.yaml", "--out", str(pre), "--max-steps", "3",
                 data, *CHEAP)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_two_process_checkpoint(pre, 3)
    recs = _records(pre)
    train = [r for r in recs if "loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3]  # written once, by the main process
    assert train[0]["epoch"] == 0.25  # the sampler shards the data: 4 batches per process and epoch
    assert sum(1 for r in recs if "dev_bleu4" in r) == 2  # sharded, gathered dev evaluation at steps 2 and 3

    # stage 2 in this process (one process is enough to make an SFT checkpoint)
    cfg = load_config(sft.SFTConfig, REPO / "configs/demo/sft.yaml",
                      [data, "train.eval_every_steps=1000", *CHEAP[1:]])
    sft.run(cfg, tmp_path / "sft", max_steps=2, init=str(pre / "last"), evaluate_test=False)
    assert (tmp_path / "sft" / "last" / "model.safetensors").is_file()

    grpo = tmp_path / "grpo"
    res = launch("grpo", "--config", "configs/demo/grpo.yaml", "--init", str(tmp_path / "sft" / "last"),
                 "--out", str(grpo), "--max-steps", "3", data, "grpo.num_generations=2", "train.epochs=1", "grpo.max_new_tokens=8",
                 "grpo.micro_batch_size=5",  # 16 sequences a process in micro-batches of 5, 5, 5, 1 (no_sync)
                 *CHEAP)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_two_process_checkpoint(grpo, 3)
    assert (grpo / "last" / "base_lm" / "config.json").is_file()
    train = [r for r in _records(grpo) if "reward_mean" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(0.0 <= r["reward_mean"] <= 1.0 for r in train)
    assert json.loads((grpo / "results.json").read_text())["steps"] == 3
