"""Stages 2 and 3 sharded with FSDP 2 (`fully_shard`, one Qwen3 decoder layer a unit) on two CPU processes.

configs/accelerate/fsdp_cpu_2proc.yaml under `accelerate launch` with ACCELERATE_USE_CPU=true (gloo);
rvlf.train.sharding switches accelerate's CPU state to FSDP. A sharded step is checked against the
same step without sharding: SFT against one process accumulating the two processes' batches
(`--grad-accum 2`: the same mean of the two batch gradients), GRPO against two DDP processes (each
process samples its groups from its own seed, so one process cannot draw the same groups).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import CHEAP, REPO, cli, cli_output, launch, tiny_runs

FSDP = str(REPO / "configs/accelerate/fsdp_cpu_2proc.yaml")
DDP = str(REPO / "configs/accelerate/cpu_2proc.yaml")
SHARDED = "model sharded with FSDP 2 over 2 processes"


def _assert_same_tensors(a: Path, b: Path, atol: float) -> None:
    x, y = load_file(str(a)), load_file(str(b))
    assert x.keys() == y.keys()
    for key in x:
        assert x[key].shape == y[key].shape, key  # whole tensors, not one process's shard
        assert torch.allclose(x[key].float(), y[key].float(), atol=atol, rtol=0), \
            (key, float((x[key].float() - y[key].float()).abs().max()))


def _assert_same_checkpoint(a: Path, b: Path, atol: float = 1e-6) -> None:
    _assert_same_tensors(a / "model.safetensors", b / "model.safetensors", atol)
    _assert_same_tensors(a / "optimizer.safetensors", b / "optimizer.safetensors", atol)


def _evaluate(checkpoint: Path, manifest: Path) -> dict:
    rc, out, err = cli_output("evaluate", "--checkpoint", checkpoint, "--split", "test", "--num-beams", "1",
                              f"data.root={manifest}")
    assert rc == 0, err
    scores = json.loads(out[out.index("{"):])
    scores.pop("checkpoint")
    return scores


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 16/4/4 toy corpus, a stage-1 checkpoint and a 3-step SFT run on ONE process that accumulates
    two batches of 4 a step (what two processes with a batch of 4 each see)."""
    root = tmp_path_factory.mktemp("sharded")
    manifest, s1, _ = tiny_runs(root)
    one = root / "sft_one"
    assert cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(one), "--init",
                str(s1 / "last"), "--max-steps", "3", "--grad-accum", "2", f"data.root={manifest}",
                "train.batch_size=4", "train.eval_every_steps=2", *CHEAP]) == 0
    return {"root": root, "manifest": manifest, "s1": s1, "sft_one": one}


@pytest.mark.slow
def test_sft_sharded_matches_one_process_resumes_and_evaluates(runs):
    root, manifest = runs["root"], runs["manifest"]
    run = root / "sft_fsdp"
    args = ["sft", "--config", "configs/demo/sft.yaml", "--init", str(runs["s1"] / "last"), "--out", str(run),
            f"data.root={manifest}", "train.batch_size=4", "train.eval_every_steps=2", *CHEAP]
    res = launch(*args, "--max-steps", "2", config=FSDP)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count(SHARDED) == 2 and "3 units" in res.stderr  # root + the 2 decoder layers
    assert json.loads((run / "last" / "trainer_state.json").read_text())["global_step"] == 2

    res = launch(*args, "--max-steps", "3", "--resume", config=FSDP)  # killed after step 2, resumed
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stderr and res.stderr.count(SHARDED) == 2
    state = json.loads((run / "last" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and len(state["rng"]) == 2

    _assert_same_checkpoint(run / "last", runs["sft_one"] / "last")
    # both runs picked the same best checkpoint and scored it alike on test (sharded beam search)
    mine, theirs = (json.loads((r / "results.json").read_text()) for r in (run, runs["sft_one"]))
    assert _numbers(mine["test"]) == pytest.approx(_numbers(theirs["test"]))
    # a sharded run's checkpoint is an ordinary one: `rvlf evaluate` on one process reads it
    assert _numbers(_evaluate(run / "last", manifest)) == pytest.approx(_numbers(_evaluate(runs["sft_one"] / "last", manifest)))


def _numbers(scores: dict) -> dict:
    """The scores of a results/evaluate dict, nested ones (`sacrebleu`) flattened; signatures left out."""
    out = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in _numbers(value).items()})
        elif isinstance(value, (int, float)):
            out[key] = value
    return out


@pytest.mark.slow
def test_grpo_sharded_matches_ddp_with_micro_batches(runs):
    """Micro-batches (no gradient sync but on the last), synced sampling, and a dev set of 5 split 3/2
    over the processes (one decodes a throw-away batch to keep the sharded forwards in step)."""
    root, manifest = runs["root"], runs["manifest"]
    args = ["grpo", "--config", "configs/demo/grpo.yaml", "--init", str(runs["sft_one"] / "last"),
            "--max-steps", "2", f"data.root={manifest}", "train.batch_size=2", "grpo.num_generations=4",
            "grpo.max_new_tokens=8", "grpo.micro_batch_size=3", "train.epochs=1", "train.eval_every_steps=2",
            *CHEAP, "data.dev_max_samples=5"]
    sharded, ddp = root / "grpo_fsdp", root / "grpo_ddp"
    res = launch(*args, "--out", str(sharded), config=FSDP)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count(SHARDED) == 2
    res = launch(*args, "--out", str(ddp), config=DDP)
    assert res.returncode == 0, res.stderr[-3000:]
    assert SHARDED not in res.stderr
    _assert_same_checkpoint(sharded / "last", ddp / "last", atol=1e-5)
    rewards = [[r["reward_mean"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if "reward_mean" in r] for run in (sharded, ddp)]
    assert len(rewards[0]) == 2 and rewards[0] == pytest.approx(rewards[1])  # the same groups were sampled
    scores = _evaluate(sharded / "last", manifest)
    assert set(scores) >= {"bleu4", "rouge_l"}


def test_fsdp_1_is_refused_in_one_line():
    """Not the report's case: FSDP 1 (flat parameters) would need other state-dict code."""
    from accelerate.utils import DistributedType

    from rvlf.errors import ConfigError
    from rvlf.train.sharding import is_sharded

    class FakeAccelerator:
        distributed_type = DistributedType.FSDP
        is_fsdp2 = False

    with pytest.raises(ConfigError, match=r"fsdp_version: 2"):
        is_sharded(FakeAccelerator())
    assert re.search("fsdp_version: 2", (REPO / "configs/accelerate/fsdp.yaml").read_text())


def test_fsdp_on_a_model_without_the_wrapped_layer_is_one_line():
    """Stage 1 (no Qwen3 layer) under fsdp.yaml: a ConfigError naming the class, not accelerate's ValueError."""
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from rvlf.errors import ConfigError
    from rvlf.train.sharding import check_wrappable

    fsdp = SimpleNamespace(distributed_type=DistributedType.FSDP,
                           state=SimpleNamespace(fsdp_plugin=SimpleNamespace(
                               transformer_cls_names_to_wrap=["Qwen3DecoderLayer"])))
    with pytest.raises(ConfigError, match=r"Qwen3DecoderLayer.*stages 2 and 3"):
        check_wrappable(fsdp, torch.nn.Sequential(torch.nn.Linear(2, 2)))
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tiny = Qwen3ForCausalLM(Qwen3Config(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1, head_dim=8))
    check_wrappable(fsdp, tiny)  # has the layer: nothing to say
    check_wrappable(SimpleNamespace(distributed_type=DistributedType.MULTI_CPU), torch.nn.Linear(2, 2))
