"""The run configuration of each stage: what `--config FILE` fills and each checkpoint's `config.yaml` holds.

A stage's config is made of the shared sections of `rvlf.config` (data, train, LLM) and the model
configs of `rvlf.models`. Defaults are the paper's (Tables 9-11, Sec. 4.1 and 6.3). Recipes, the
checkpoint loaders and `rvlf plan-memory` all read them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from rvlf.config import (Bool, DataConfig, Float, Int, LLMConfig, NonNegFloat, PosFloat, Section, Str, TrainConfig,
                         load_config, read_yaml)
from rvlf.errors import ConfigError
from rvlf.models.configs import FusionConfig, SkeletonEncoderConfig, VLPConfig

REWARD_KINDS = ("bleu", "rouge", "both")  # = rvlf.rl.rewards.KINDS (a test keeps them in step)


# --- stage 1: visual-language pre-training (Sec. 3.1, Table 9) ---------------------------------

@dataclass
class TokenizerConfig(Section):
    """`corpus`: built from the training texts (offline); `mbart`: a trimmed mBART tokenizer."""

    kind: Literal["mbart", "corpus"] = "mbart"
    name_or_path: Str = "facebook/mbart-large-cc25"


@dataclass
class PretrainConfig(Section):
    data: DataConfig = field(default_factory=DataConfig)
    model: VLPConfig = field(default_factory=VLPConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# --- stage 2: SLT-SFT (Sec. 3.2, Table 10) -----------------------------------------------------

def _sft_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=40, batch_size=4, optimizer="adamw", lr=2e-4, weight_decay=0.0, warmup_epochs=8)


@dataclass
class SFTConfig(Section):
    data: DataConfig = field(default_factory=DataConfig)
    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)  # replaced by --init's
    fusion: FusionConfig = field(default_factory=FusionConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=_sft_train_defaults)
    projector_lr: PosFloat = 2e-5  # Table 10: "Projector LR"
    encoder_lr: PosFloat = 2e-5  # only used with train_encoder
    train_encoder: Bool = False  # the paper lists no encoder lr: frozen by default (docs/fidelity.md)
    pretrained_encoder: Bool = True  # False: Table 5 "w/o Pre-training" (random skeleton encoder)
    cache_encoder_outputs: Bool = False  # frozen encoder: encode each video once (memory: T x d a video)


# --- stage 3: SLT-GRPO (Sec. 3.3, Table 11) ----------------------------------------------------

def _grpo_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=8, optimizer="adamw", lr=2e-5, weight_decay=0.0, warmup_epochs=0,
                       scheduler="constant", eval_every_steps=100)


def _grpo_lora_defaults() -> LLMConfig:
    return LLMConfig(lora_r=64, lora_alpha=128, lora_dropout=0.05)


@dataclass
class GRPOParams(Section):
    """Sampling, reward and loss settings of Eqs. 15-19; every value is range-checked on construction
    (a config file, an override or a checkpoint's `config.yaml`), with one `ConfigError` line per fault."""

    num_generations: Int = 8  # Table 11 "Responses"; >= 2: Eq. 16 compares the samples of a group
    epsilon: Float = 0.2  # clip range (DeepSeekMath / TRL default; the paper gives none), in (0, 1)
    beta: Float = 0.04  # KL weight (DeepSeekMath / TRL default; the paper gives none), >= 0
    mu: Int = 1  # policy updates per sampled batch, >= 1
    reward: Str = "both"  # bleu | rouge | both (Table 7)
    reward_lambda: Float = 0.5  # Eq. 15, Sec. 4.1, in [0, 1]
    short_punct: Bool = True  # Sec. 6.3: punctuation appended to very short sentences
    temperature: Float = 1.0  # sampling AND log-prob temperature (TRL's rule), > 0
    top_p: Float = 1.0  # nucleus sampling, in (0, 1]; shapes sampling only (TRL's rule)
    top_k: Int = 0  # 0: off; shapes sampling only (TRL's rule)
    max_new_tokens: Int = 64
    # Sequences (completions) per forward/backward of the policy and reference passes; gradients of a
    # step's micro-batches add up to the un-split update. 0: all batch x num_generations at once.
    micro_batch_size: Int = 0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"grpo.{name} must be {rule}, got {getattr(self, name)!r}")

        def number(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(name, "a finite number")
            return value

        if number("num_generations") < 2 or self.num_generations != int(self.num_generations):
            raise ConfigError(f"grpo.num_generations must be an integer >= 2, got {self.num_generations!r}: "
                              "Eq. 16 normalises each reward within its group, so a group of one has advantage 0 "
                              "and GRPO would not learn")
        if not 0.0 < number("epsilon") < 1.0:
            raise bad("epsilon", "in (0, 1) (the ratio is clipped to [1 - epsilon, 1 + epsilon])")
        if number("beta") < 0.0:
            raise bad("beta", ">= 0 (the weight of the KL penalty)")
        if number("mu") < 1 or self.mu != int(self.mu):
            raise bad("mu", "an integer >= 1 (policy updates per sampled batch)")
        if self.reward not in REWARD_KINDS:
            raise bad("reward", f"one of {', '.join(REWARD_KINDS)}")
        if not 0.0 <= number("reward_lambda") <= 1.0:
            raise bad("reward_lambda", "in [0, 1] (Eq. 15: lambda BLEU-4 + (1 - lambda) ROUGE-L)")
        if number("temperature") <= 0.0:
            raise bad("temperature", "> 0")
        if not 0.0 < number("top_p") <= 1.0:
            raise bad("top_p", "in (0, 1] (1: off)")
        if number("top_k") < 0 or self.top_k != int(self.top_k):
            raise bad("top_k", "an integer >= 0 (0: off)")
        if number("max_new_tokens") < 1 or self.max_new_tokens != int(self.max_new_tokens):
            raise bad("max_new_tokens", "an integer >= 1")
        if number("micro_batch_size") < 0 or self.micro_batch_size != int(self.micro_batch_size):
            raise bad("micro_batch_size", "an integer >= 0 (sequences per forward/backward; 0: all at once)")


@dataclass
class GRPOConfig(Section):
    data: DataConfig = field(default_factory=DataConfig)
    llm: LLMConfig = field(default_factory=_grpo_lora_defaults)  # the new adapter (Table 11)
    train: TrainConfig = field(default_factory=_grpo_train_defaults)
    grpo: GRPOParams = field(default_factory=GRPOParams)
    # Filled from the SFT checkpoint (--init): how to rebuild the merged SFT model.
    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    sft_llm: LLMConfig = field(default_factory=LLMConfig)
    projector_lr: NonNegFloat = 0.0  # unused: encoder and projector are frozen in stage 3
    encoder_lr: NonNegFloat = 0.0
    cache_encoder_outputs: Bool = False  # the encoder is frozen: encode each video once


# --- resolution: pure functions from the given config to the one that builds the model ------------
# A recipe resolves its config once with these (each returns a new config, `dataclasses.replace`),
# then freezes it (`rvlf.config.freeze`); model construction only reads it, and `config.yaml` is it.

# a config file's (or checkpoint's config.yaml's) `stage:` key -> its config class
STAGE_CONFIGS: dict[str, type] = {"pretrain": PretrainConfig, "sft": SFTConfig, "grpo": GRPOConfig}


def load_stage_file(path, overrides=()) -> tuple[str, PretrainConfig | SFTConfig | GRPOConfig]:
    """(stage, validated config) of a stage config file, the class picked by its `stage:` key (torch-free:
    `rvlf plan-memory` checks its config before torch loads). Raises ConfigError (one line naming the file):
    missing, empty, not valid YAML, an unknown or invalid key, a `stage:` that is not pretrain, sft or grpo."""
    stage = read_yaml(path).get("stage")
    if stage not in STAGE_CONFIGS:
        raise ConfigError(f"{path}: `stage:` must be pretrain, sft or grpo, got {stage!r}")
    return stage, load_config(STAGE_CONFIGS[stage], path, overrides)


def with_stage1_encoder(cfg: SFTConfig, stage1: PretrainConfig) -> SFTConfig:
    """SFT on a stage-1 checkpoint: the skeleton encoder is that checkpoint's (`--init`)."""
    return replace(cfg, encoder=stage1.model.encoder)


def resumed_sft(cfg: SFTConfig, stored: SFTConfig) -> SFTConfig:
    """A resumed SFT run: the encoder shape is the run's own (its checkpoint's `config.yaml`)."""
    return replace(cfg, encoder=stored.encoder)


def with_sft(cfg: GRPOConfig, sft: SFTConfig) -> GRPOConfig:
    """GRPO on an SFT checkpoint (`--init`): how to rebuild the merged SFT model (encoder, fusion, the
    SFT LM settings as `sft_llm`) and the base LM the new adapter goes on (`llm.name_or_path`, `tiny`,
    `dtype`, `keep_base`); the new adapter's own settings (`llm.lora_*`) stay the given ones."""
    llm = replace(cfg.llm, name_or_path=sft.llm.name_or_path, tiny=sft.llm.tiny, dtype=sft.llm.dtype,
                  keep_base=sft.llm.keep_base)
    return replace(cfg, encoder=sft.encoder, fusion=sft.fusion, sft_llm=sft.llm, llm=llm)


def resumed_grpo(cfg: GRPOConfig, stored: GRPOConfig) -> GRPOConfig:
    """A resumed GRPO run: the model settings are the run's own (its `config.yaml`); data, train and
    grpo settings are the given ones (`rvlf.train.run_folder.claim` has checked what may change)."""
    return replace(stored, data=cfg.data, train=cfg.train, grpo=cfg.grpo)


def with_widths(cfg: SFTConfig | GRPOConfig, dino_dim: int | None) -> SFTConfig | GRPOConfig:
    """The widths the data and the encoder fix: `fusion.sign_dim` = the encoder's `d_model` (Eq. 12 adds
    to `Z_s`) and `fusion.dino_dim` = the DINOv2 width `D` of the feature files (`dino [T,3,D]`, read
    from the training set; None without DINOv2). A GRPO config's fusion is the SFT model's: features of
    another width are a `ConfigError`, not a silent change."""
    fusion = replace(cfg.fusion, sign_dim=cfg.encoder.d_model)
    if dino_dim is not None and dino_dim != fusion.dino_dim:
        if isinstance(cfg, GRPOConfig):
            raise ConfigError(f"data: the feature files hold DINOv2 features of width {dino_dim}, but the SFT model "
                              f"was trained on width {fusion.dino_dim} (fusion.dino_dim); extract the features "
                              "with the same DINOv2 model")
        fusion = replace(fusion, dino_dim=dino_dim)
    if isinstance(cfg, GRPOConfig) and fusion.sign_dim != cfg.fusion.sign_dim:
        raise ConfigError(f"fusion.sign_dim ({cfg.fusion.sign_dim}) differs from encoder.d_model "
                          f"({cfg.encoder.d_model}) in the SFT checkpoint's config")
    return replace(cfg, fusion=fusion)
