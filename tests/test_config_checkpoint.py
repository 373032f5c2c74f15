"""Config loading (YAML + overrides, unknown keys refused) and atomic safetensors checkpoints."""

from __future__ import annotations

import os

import pytest
import torch

from rvlf.config import DataConfig, LLMConfig, TrainConfig, apply_overrides, load_config, to_yaml
from rvlf.errors import ConfigError, InputFileError
from rvlf.train import checkpoint as ckpt
from dataclasses import dataclass, field


@dataclass
class _Run:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)


def test_yaml_defaults_overrides_and_base(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  lr: 0.5\n  epochs: 3\n")
    (tmp_path / "run.yaml").write_text("base: base.yaml\nstage: pretrain\ntrain:\n  epochs: 7\ndata:\n  dataset: phoenix\n")
    cfg = load_config(_Run, tmp_path / "run.yaml", ["train.batch_size=2", "llm.target_modules=[q_proj]"])
    assert cfg.train.lr == 0.5 and cfg.train.epochs == 7.0 and cfg.train.batch_size == 2
    assert cfg.data.language() == "de"
    assert cfg.llm.target_modules == ["q_proj"]
    assert cfg.train.weight_decay == 0.001  # paper default kept
    again = load_config(_Run, None, [])
    assert again.train.lr == 0.01


def test_unknown_key_and_bad_type_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*lrr"):
        load_config(_Run, bad)
    bad.write_text("train:\n  batch_size: many\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(_Run, bad)
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Run, tmp_path / "missing.yaml")


def test_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(_Run, None, ["train.lr=0.2"])
    (tmp_path / "c.yaml").write_text(to_yaml(cfg))
    assert load_config(_Run, tmp_path / "c.yaml") == cfg


def test_checkpoint_round_trip_with_optimizer_and_rng(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    ckpt.save_checkpoint(tmp_path / "last", model_state=model.state_dict(), trainer_state={"global_step": 5},
                         config_yaml="a: 1\n", optimizer_state=opt.state_dict())
    expected_next = torch.rand(3)
    # restore: same weights, optimizer moments and RNG stream
    state = ckpt.load_trainer_state(tmp_path / "last")
    assert state["global_step"] == 5
    w = ckpt.load_weights(tmp_path / "last" / ckpt.MODEL_FILE)
    assert torch.equal(w["weight"], model.weight.detach())
    opt2 = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=0.1)
    opt2.load_state_dict(ckpt.load_optimizer_state(tmp_path / "last"))
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    ckpt.restore_rng(tmp_path / "last", state)
    assert torch.equal(torch.rand(3), expected_next)
    assert not any(p.name.startswith(".last.tmp") for p in tmp_path.iterdir())


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.ones(2)}, trainer_state={"global_step": 1})

    def boom(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.zeros(2)}, trainer_state={"global_step": 2},
                             extra=boom)
    assert ckpt.load_trainer_state(tmp_path / "last")["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last"]


def test_crash_between_renames_is_recovered(tmp_path):
    ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.ones(2)}, trainer_state={"global_step": 3})
    os.replace(tmp_path / "last", tmp_path / "last.old")  # as if killed right after the first rename
    assert ckpt.resolve_checkpoint(tmp_path / "last") == tmp_path / "last"
    assert ckpt.load_trainer_state(tmp_path / "last")["global_step"] == 3


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="not a checkpoint"):
        ckpt.resolve_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="safetensors"):
        ckpt.load_weights(tmp_path / "model.safetensors")


def test_partial_section_keeps_the_stage_defaults():
    from rvlf.train.recipe_configs import GRPOConfig

    cfg = load_config(GRPOConfig, None, ["llm.name_or_path=/models/qwen3"])
    assert cfg.llm.name_or_path == "/models/qwen3"
    assert (cfg.llm.lora_r, cfg.llm.lora_alpha, cfg.llm.lora_dropout) == (64, 128, 0.05)  # Table 11, not SFT's
    assert cfg.train.lr == 2e-5 and cfg.train.epochs == 2


def test_yaml_no_stays_a_string_for_string_keys():
    cfg = load_config(_Run, None, ["train.mixed_precision=no"])
    assert cfg.train.mixed_precision == "no"


def test_exponent_without_dot_is_a_float():
    cfg = load_config(_Run, None, ["train.lr=1e-3", "train.batch_size=4"])
    assert cfg.train.lr == 0.001
    with pytest.raises(ConfigError, match="lr"):
        load_config(_Run, None, ["train.lr=fast"])


def test_best_checkpoint_prefers_bleu4_then_reward():
    from rvlf.train.loop import Trainer

    t = Trainer.__new__(Trainer)
    t.best_dev = None
    assert t.is_better({"bleu4": 0.0, "reward": 0.0}) and t.best_score == -1.0  # the first evaluation
    t.best_dev = {"bleu4": 0.0, "reward": 10.0}
    assert t.is_better({"bleu4": 0.0, "reward": 11.0})
    assert not t.is_better({"bleu4": 0.0, "reward": 9.0})
    assert t.is_better({"bleu4": 0.5, "reward": 1.0})


@pytest.mark.parametrize("kind, expected", [
    ("constant", [0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("wsd", [0.5, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]),  # decay over the last 40% of 10 steps
])
def test_learning_rate_schedules(kind, expected):
    from rvlf.errors import TrainingError
    from rvlf.train.optim import make_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = make_scheduler(opt, kind, warmup_steps=2, total_steps=10, decay_fraction=0.4)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"] / 2.0)
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected)
    cosine = make_scheduler(opt, "cosine", warmup_steps=0, total_steps=10).lr_lambdas[0]
    assert cosine(0) == 1.0 and cosine(5) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0)
    with pytest.raises(TrainingError, match="wsd"):
        make_scheduler(opt, "linear", 0, 10)
    with pytest.raises(TrainingError, match="decay_fraction"):
        make_scheduler(opt, "wsd", 0, 10, decay_fraction=0.0)
