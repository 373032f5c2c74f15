"""`rvlf.runs.memory_plan` and `rvlf plan-memory`: exact meta-device counts, LoRA vs peft, monotonicity, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from helpers import REPO
from rvlf.cli import main
from rvlf.config import LLMConfig, load_config
from rvlf.errors import ConfigError
from rvlf.runs.memory_plan import (GIB, LMShape, QWEN3_SHAPES, count_params, lm_activation_bytes, lm_config, lora_inputs,
                         lora_param_count, meta_lm, plan_llm_stage, plan_pretrain)
from rvlf.models.fusion import FusionConfig, SignFusion
from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
from rvlf.models.vlp import VLPConfig, VLPModel
from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 64}
SMALL_ENC = {"d_model": 64, "num_layers": 1, "num_heads": 4, "ff_dim": 128, "gcn_channels": [8, 8, 16]}


def _write(tmp_path, name: str, data: dict):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_meta_counts_equal_real_instantiation():
    enc_cfg = SkeletonEncoderConfig(**SMALL_ENC)
    with torch.device("meta"):
        meta_enc, meta_fus = SkeletonEncoder(enc_cfg), SignFusion(FusionConfig(sign_dim=64, dino_dim=48), 32)
        meta_vlp = VLPModel(VLPConfig(encoder=enc_cfg, d_model=64, text_layers=1, decoder_layers=1, num_heads=4,
                                      ff_dim=128, contrastive_dim=32), 100, 1, 0, 2)
    real_enc, real_fus = SkeletonEncoder(enc_cfg), SignFusion(FusionConfig(sign_dim=64, dino_dim=48), 32)
    real_vlp = VLPModel(VLPConfig(encoder=enc_cfg, d_model=64, text_layers=1, decoder_layers=1, num_heads=4,
                                  ff_dim=128, contrastive_dim=32), 100, 1, 0, 2)
    assert next(meta_enc.parameters()).is_meta
    assert count_params(meta_enc) == count_params(real_enc) > 0
    assert count_params(meta_fus) == count_params(real_fus) > 0
    assert count_params(meta_vlp) == count_params(real_vlp) > count_params(real_enc)

    from transformers import AutoModelForCausalLM

    config, source = lm_config(LLMConfig(tiny=TINY), vocab_size=97)
    assert source == "llm.tiny"
    lm = meta_lm(config)
    assert next(lm.parameters()).is_meta
    assert count_params(lm) == count_params(AutoModelForCausalLM.from_config(config))


def test_builtin_qwen3_8b_shape_counts_8_19b_parameters():
    config, source = lm_config(LLMConfig(name_or_path="/nonexistent/Qwen3-8B"))
    assert "built-in" in source
    n = count_params(meta_lm(config))
    assert 8.15e9 < n < 8.25e9  # Qwen3-8B: 8.19B parameters
    assert set(QWEN3_SHAPES) == {"Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B"}


@pytest.mark.parametrize("r,targets", [(16, ["q_proj", "v_proj"]), (4, ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                          "gate_proj", "down_proj"])])
def test_lora_count_equals_peft(r, targets):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=101, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    peft_model = get_peft_model(Qwen3ForCausalLM(config), LoraConfig(r=r, target_modules=targets,
                                                                     task_type="CAUSAL_LM"))
    expected = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_param_count(meta_lm(config), targets, r) == expected
    assert len(lora_inputs(meta_lm(config), targets)) == len(targets)


def test_lora_target_that_matches_nothing_is_an_error():
    from rvlf.errors import ConfigError

    config, _ = lm_config(LLMConfig(tiny=TINY), vocab_size=50)
    with pytest.raises(ConfigError, match="target_modules"):
        lora_param_count(meta_lm(config), ["nope_proj"], 8)


def _sft(**train) -> SFTConfig:
    return load_config(SFTConfig, None, ["llm.name_or_path=Qwen/Qwen3-0.6B"] + [f"train.{k}={v}" for k, v in train.items()])


def _total(p, n=1, sharding="ddp"):
    return p.per_gpu(n, sharding)["total"]


def test_monotonicity():
    small, big = plan_llm_stage(_sft(batch_size=1), "sft"), plan_llm_stage(_sft(batch_size=4), "sft")
    act = lambda p: p.phases["forward/backward"]["activations"]  # noqa: E731
    assert act(big) > act(small) and _total(big) > _total(small)
    ckpt = plan_llm_stage(_sft(batch_size=4, grad_checkpointing=True), "sft")
    assert act(ckpt) < act(big) / 5
    assert _total(big, 4, "zero3") < _total(big, 2, "zero3") < _total(big, 1, "zero3") <= _total(big, 1, "ddp")
    fp32 = plan_llm_stage(_sft(batch_size=4, mixed_precision="'no'"), "sft")
    assert act(fp32) == act(big)  # "auto" keeps the bf16 checkpoint: compute stays 16-bit
    shape = LMShape.of(lm_config(LLMConfig(name_or_path="Qwen3-0.6B"))[0])
    assert lm_activation_bytes(shape, 100, 4, False) > lm_activation_bytes(shape, 100, 2, False)
    assert lm_activation_bytes(shape, 200, 2, True) < lm_activation_bytes(shape, 200, 2, False)


def test_sft_plan_components_and_trainable_sets():
    p = plan_llm_stage(_sft(), "sft")
    c = p.counts
    assert c["trainable"] == c["lora"] + c["fusion_projector"]  # encoder frozen by default
    assert p.gradients == 4 * c["trainable"] and p.optimizer == 8 * c["trainable"]  # fp32 grads, AdamW m and v
    assert p.params["frozen"] == 2 * c["lm"] + 4 * c["encoder"]  # bf16 base, fp32 frozen encoder
    assert p.settings["sequence_length"] == 60 + 300 + 65


def test_grpo_plan_has_generation_reference_and_policy_phases():
    cfg = GRPOConfig()
    cfg.llm.name_or_path = "Qwen/Qwen3-0.6B"
    p = plan_llm_stage(cfg, "grpo")
    assert set(p.phases) == {"generation", "reference pass", "policy forward/backward"}
    assert p.settings["sequences"] == 64 and p.settings["lora_r"] == 64
    shape = LMShape.of(lm_config(LLMConfig(name_or_path="Qwen3-0.6B"))[0])
    # KV cache: 64 sequences x (60 prompt + 300 signs + 64 completion) x 2 (k, v) x layers x kv x d x 2 bytes
    assert p.phases["generation"]["kv_cache"] == 64 * 424 * 2 * shape.layers * shape.kv_heads * shape.head_dim * 2
    assert p.counts["trainable"] == p.counts["lora"]  # stage 3 trains the adapter only
    cfg.grpo.num_generations = 4
    half = plan_llm_stage(cfg, "grpo")
    assert half.phases["generation"]["kv_cache"] * 2 == p.phases["generation"]["kv_cache"]


def test_pretrain_plan_counts_vlp_with_sgd_momentum():
    cfg = load_config(PretrainConfig, None, [])
    p = plan_pretrain(cfg, vocab_size=1000)
    with torch.device("meta"):
        n = count_params(VLPModel(cfg.model, 1000, 1, 0, 2))
    assert p.counts["total"] == n and p.optimizer == 4 * n and p.params["frozen"] == 0
    assert _total(p) < 8 * GIB


def test_cli_table_and_json(tmp_path, capsys):
    path = _write(tmp_path, "sft.yaml", {"stage": "sft", "llm": {"tiny": TINY}, "encoder": SMALL_ENC,
                                         "fusion": {"sign_dim": 64}, "train": {"batch_size": 2}})
    assert main(["plan-memory", "--config", str(path), "--gpu-gib", "16", "--num-gpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "weights, frozen" in out and "ZeRO-3/FSDP" in out and "fits" in out
    assert main(["plan-memory", "--config", str(path), "--json", "--grad-checkpointing", "--mixed-precision", "bf16",
                 "train.batch_size=3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"stage", "model", "settings", "param_counts", "parameters_gib", "gradients_gib", "optimizer_gib",
            "phases_gib", "sharding", "gpu_gib", "num_gpus"} <= set(data)
    assert data["stage"] == "sft" and data["settings"]["batch"] == 3 and data["settings"]["grad_checkpointing"]
    assert set(data["sharding"]) == {"ddp", "zero2", "zero3"} and data["sharding"]["ddp"]["fits"] is True


def test_cli_grpo_8b_does_not_fit_a_small_gpu(tmp_path, capsys):
    path = _write(tmp_path, "grpo.yaml", {"stage": "grpo"})
    assert main(["plan-memory", "--config", str(path), "--gpu-gib", "24", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["param_counts"]["lm"] > 8e9
    assert data["sharding"]["ddp"]["fits"] is False


def test_cli_missing_config_is_one_line_error(tmp_path, capsys):
    rc = main(["plan-memory", "--config", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "nope.yaml" in err and "not found" in err


def test_cli_bad_stage_and_unknown_model_are_one_line_errors(tmp_path, capsys):
    assert main(["plan-memory", "--config", str(_write(tmp_path, "x.yaml", {"stage": "pre"}))]) == 2
    assert "stage" in capsys.readouterr().err
    path = _write(tmp_path, "s.yaml", {"stage": "sft", "llm": {"name_or_path": "/nowhere/MyLM-3B"}})
    assert main(["plan-memory", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MyLM-3B" in err


def test_cli_checks_the_config_before_torch_loads(tmp_path):
    """A missing, empty or comment-only file, an empty base and a bad value: one line naming the file, and
    neither torch nor transformers imported (they took ~4 s before the line came)."""
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# stage: sft\n\n   # nothing set yet\n")
    (tmp_path / "on_empty.yaml").write_text("base: comments.yaml\nstage: sft\n")
    (tmp_path / "badlr.yaml").write_text("stage: sft\ntrain:\n  lr: -0.1\n")
    script = ("import contextlib, io, json, sys\nfrom rvlf.cli import main\nout = []\n"
              "for name in sys.argv[1:]:\n    err = io.StringIO()\n    with contextlib.redirect_stderr(err):\n"
              "        out.append((main(['plan-memory', '--config', name]), err.getvalue().strip()))\n"
              "print(json.dumps({'results': out, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n")
    done = subprocess.run([sys.executable, "-c", script] + [str(tmp_path / name) for name in
                          ("nope.yaml", "empty.yaml", "comments.yaml", "on_empty.yaml", "badlr.yaml")],
                          capture_output=True, text=True, check=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1"))
    data = json.loads(done.stdout)
    modules, results = set(data["modules"]), data["results"]
    lines = [err for _, err in results]
    assert [rc for rc, _ in results] == [2] * 5, results
    assert lines[:4] == [f"rvlf plan-memory: error: {tmp_path / 'nope.yaml'}: config file not found",
                         f"rvlf plan-memory: error: {tmp_path / 'empty.yaml'}: empty config file",
                         f"rvlf plan-memory: error: {tmp_path / 'comments.yaml'}: empty config file",
                         f"rvlf plan-memory: error: {tmp_path / 'comments.yaml'}: empty config file "
                         f"(the base of {tmp_path / 'on_empty.yaml'})"]
    assert lines[4] == f"rvlf plan-memory: error: {tmp_path / 'badlr.yaml'}:3: train.lr: must be > 0, got -0.1"
    assert not modules & {"torch", "transformers"}, sorted(modules & {"torch", "transformers"})


def test_stage_config_classes_agree():
    from rvlf.runs.memory_plan import STAGE_CONFIGS
    from rvlf.train.recipe_configs import load_stage_file

    for stage, cls in STAGE_CONFIGS.items():
        assert type(load_stage_file(str(REPO / "configs/paper/phoenix" / f"{stage}.yaml"), [])[1]) is cls


def test_cli_defaults_agree_with_the_planner():
    from rvlf.runs import memory_plan as memory
    from rvlf.commands import plan_memory

    assert plan_memory.DEFAULT_PROMPT_TOKENS == memory.DEFAULT_PROMPT_TOKENS
    assert plan_memory.DEFAULT_TEXT_VOCAB == memory.DEFAULT_TEXT_VOCAB


# ---- GRPO micro-batches and prefix sharing (issue 15) ----------------------------------------------------
def test_grpo_micro_batch_scales_the_passes_and_generation_prefills_each_prompt_once():
    cfg = GRPOConfig()
    cfg.llm.name_or_path = "Qwen/Qwen3-0.6B"
    whole = plan_llm_stage(cfg, "grpo")
    cfg.grpo.micro_batch_size = 4
    micro = plan_llm_stage(cfg, "grpo")
    assert whole.settings["micro_batch_size"] == 64 and micro.settings["micro_batch_size"] == 4
    for phase in ("reference pass", "policy forward/backward"):
        assert sum(micro.phases[phase].values()) < sum(whole.phases[phase].values()) / 10
    shape = LMShape.of(lm_config(LLMConfig(name_or_path="Qwen3-0.6B"))[0])
    per_token = whole.phases["policy forward/backward"]["activations"] / (64 * 424)
    assert micro.phases["policy forward/backward"]["activations"] == pytest.approx(per_token * 4 * 424)
    gen = micro.phases["generation"]
    assert gen == whole.phases["generation"]  # sampling holds every sequence's cache whatever the micro-batch
    # the 8 prompts (60 + 300 tokens) are prefilled once, not 64 times
    assert gen["prompt_cache"] == 8 * 360 * 2 * shape.layers * shape.kv_heads * shape.head_dim * 2
    cfg.grpo.num_generations = 4
    assert plan_llm_stage(cfg, "grpo").phases["generation"]["prefill_workspace"] == gen["prefill_workspace"]
    with pytest.raises(ConfigError, match="micro_batch_size"):
        load_config(GRPOConfig, None, ["grpo.micro_batch_size=-1"])


def test_largest_micro_batch_is_the_edge_of_fitting():
    cfg = GRPOConfig()  # Qwen3-8B, 8 x 8 sequences
    p = plan_llm_stage(cfg, "grpo")
    for gib in (24, 32, 48, 80):
        m = p.largest_micro_batch(gib)
        assert 0 < m < 64
        cfg.grpo.micro_batch_size = m
        assert plan_llm_stage(cfg, "grpo").per_gpu()["total"] <= gib * GIB
        cfg.grpo.micro_batch_size = m + 1
        assert plan_llm_stage(cfg, "grpo").per_gpu()["total"] > gib * GIB
    assert p.largest_micro_batch(16) == 0  # the bf16 weights alone take 15.4 GiB
    assert plan_llm_stage(SFTConfig(), "sft").largest_micro_batch(32) is None


@pytest.mark.parametrize("dataset", ["phoenix", "csl-daily", "how2sign", "openasl"])
def test_paper_grpo_configs_fit_four_32gb_gpus_as_the_paper_ran(dataset, capsys):
    from helpers import REPO

    path = REPO / "configs" / "paper" / dataset / "grpo.yaml"
    assert main(["plan-memory", "--config", str(path), "--gpu-gib", "32", "--num-gpus", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    s = data["settings"]
    assert s["batch"] * 4 == 8 and s["num_generations"] == 8  # Table 11: global batch 8, 8 responses
    assert data["sharding"]["ddp"]["fits"] and s["micro_batch_size"] <= data["largest_micro_batch"]["ddp"]
    assert data["model"] == "Qwen/Qwen3-8B" and s["sign_tokens"] == 300
    assert main(["plan-memory", "--config", str(path), "--gpu-gib", "32", "--num-gpus", "4"]) == 0
    assert "largest grpo.micro_batch_size that fits (of 16 sequences" in capsys.readouterr().out
