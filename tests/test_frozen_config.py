"""A run's config is resolved once, then frozen, and `config.yaml` is exactly what built the model
(issue 32): each stage's model rebuilt from its checkpoint's `config.yaml` alone (plus the tokenizer
it holds) has the checkpoint's parameter names and shapes; resolution is pure; a write after
freezing raises."""

from __future__ import annotations

import dataclasses

import pytest


def _shapes(state) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _saved_shapes(directory) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def test_freeze_makes_every_section_read_only_and_replace_makes_a_new_config():
    from rvlf.config import freeze, is_frozen, to_yaml
    from rvlf.train.recipe_configs import GRPOConfig

    cfg = freeze(GRPOConfig())
    assert is_frozen(cfg) and is_frozen(cfg.fusion) and is_frozen(cfg.grpo)
    with pytest.raises(dataclasses.FrozenInstanceError, match="FusionConfig.dino_dim"):
        cfg.fusion.dino_dim = 16  # the write `prepare_data` used to do
    with pytest.raises(dataclasses.FrozenInstanceError, match="GRPOConfig.encoder"):
        cfg.encoder = cfg.encoder  # and `_from_sft`
    with pytest.raises(dataclasses.FrozenInstanceError):
        del cfg.train.lr
    new = dataclasses.replace(cfg, fusion=dataclasses.replace(cfg.fusion, dino_dim=16))
    assert new.fusion.dino_dim == 16 and cfg.fusion.dino_dim == 768 and not is_frozen(new)
    assert to_yaml(cfg) == to_yaml(GRPOConfig())  # freezing changes nothing that is saved


def test_resolution_functions_are_pure():
    from rvlf.config import to_yaml
    from rvlf.errors import ConfigError
    from rvlf.models.configs import SkeletonEncoderConfig
    from rvlf.train.recipe_configs import (GRPOConfig, PretrainConfig, SFTConfig, resumed_grpo, with_sft,
                                    with_stage1_encoder, with_widths)

    stage1 = PretrainConfig()
    stage1.model.encoder = SkeletonEncoderConfig(d_model=64, num_heads=2, ff_dim=128)
    sft = SFTConfig()
    before = to_yaml(sft)
    resolved = with_widths(with_stage1_encoder(sft, stage1), 16)
    assert to_yaml(sft) == before  # the given config is untouched
    assert resolved.encoder.d_model == 64 and resolved.fusion.sign_dim == 64 and resolved.fusion.dino_dim == 16

    grpo = with_sft(GRPOConfig(), resolved)
    assert grpo.fusion == resolved.fusion and grpo.sft_llm == resolved.llm and grpo.llm.lora_r == 64
    assert GRPOConfig().fusion.dino_dim == 768
    # variant: GRPO on features of another DINOv2 width than the SFT model's is one clear error
    with pytest.raises(ConfigError, match="width 32.*trained on width 16"):
        with_widths(grpo, 32)
    resumed = resumed_grpo(GRPOConfig(grpo=dataclasses.replace(GRPOConfig().grpo, beta=0.0)), grpo)
    assert resumed.grpo.beta == 0.0 and resumed.fusion == grpo.fusion


@pytest.mark.slow
def test_each_stage_rebuilds_from_its_config_yaml_alone(tiny_grpo_run):
    from rvlf.config import load_config
    from rvlf.models.skeleton import SkeletonEncoder
    from rvlf.models.vlp import VLPModel
    from rvlf.text.tokenizer import SLTTokenizer
    from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig
    from rvlf.train.sign_lm import assemble, build_language_model, merged_policy

    root = tiny_grpo_run.parent
    # stage 1
    s1 = root / "s1" / "best"
    cfg = load_config(PretrainConfig, s1 / "config.yaml")
    tok = SLTTokenizer.load(s1 / "tokenizer")
    model = VLPModel(cfg.model, tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id)
    assert _shapes(model.state_dict()) == _saved_shapes(s1)

    # stage 2: the LM from `llm` (a tiny random Qwen3 of `llm.tiny`'s shape), not from the saved base_lm/
    sft = root / "sft" / "best"
    cfg = load_config(SFTConfig, sft / "config.yaml")
    assert cfg.fusion.dino_dim == 16 and cfg.fusion.sign_dim == cfg.encoder.d_model == 32  # from the data, stage 1
    lm, tok = build_language_model(cfg.llm, [], cfg.data.language(), tokenizer_dir=sft / "llm_tokenizer")
    model = assemble(cfg, SkeletonEncoder(cfg.encoder), lm, tok)
    assert _shapes(model.state_dict_for_checkpoint()) == _saved_shapes(sft)

    # stage 3: the merged SFT model (encoder, fusion, sft_llm) and the new adapter (llm)
    grpo = tiny_grpo_run / "best"
    cfg = load_config(GRPOConfig, grpo / "config.yaml")
    lm, tok = build_language_model(cfg.sft_llm, [], cfg.data.language(), tokenizer_dir=grpo / "llm_tokenizer")
    sft_model = assemble(SFTConfig(data=cfg.data, encoder=cfg.encoder, fusion=cfg.fusion, llm=cfg.sft_llm),
                         SkeletonEncoder(cfg.encoder), lm, tok)
    sft_shapes = {f"sft.{k}": v for k, v in _shapes(sft_model.state_dict_for_checkpoint()).items()}
    rebuilt = _shapes(merged_policy(cfg, sft_model).state_dict_for_checkpoint())  # merges sft_model's adapter
    assert not set(rebuilt) & set(sft_shapes)
    assert {**rebuilt, **sft_shapes} == _saved_shapes(grpo)
