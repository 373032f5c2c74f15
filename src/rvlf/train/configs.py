"""The run configuration of each stage: what `--config FILE` fills and each checkpoint's `config.yaml` holds.

A stage's config is made of the shared sections of `rvlf.config` (data, train, LLM) and the model
configs of `rvlf.models`. Defaults are the paper's (Tables 9-11, Sec. 4.1 and 6.3). Recipes, the
checkpoint loaders and `rvlf plan-memory` all read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rvlf.config import DataConfig, LLMConfig, TrainConfig
from rvlf.models.fusion import FusionConfig
from rvlf.models.skeleton import SkeletonEncoderConfig
from rvlf.models.vlp import VLPConfig


# --- stage 1: visual-language pre-training (Sec. 3.1, Table 9) ---------------------------------

@dataclass
class TokenizerConfig:
    """`corpus`: built from the training texts (offline); `mbart`: a trimmed mBART tokenizer."""

    kind: str = "mbart"
    name_or_path: str = "facebook/mbart-large-cc25"


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: VLPConfig = field(default_factory=VLPConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# --- stage 2: SLT-SFT (Sec. 3.2, Table 10) -----------------------------------------------------

def _sft_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=40, batch_size=4, optimizer="adamw", lr=2e-4, weight_decay=0.0, warmup_epochs=8)


@dataclass
class SFTConfig:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)  # replaced by --init's
    fusion: FusionConfig = field(default_factory=FusionConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=_sft_train_defaults)
    projector_lr: float = 2e-5  # Table 10: "Projector LR"
    encoder_lr: float = 2e-5  # only used with train_encoder
    train_encoder: bool = False  # the paper lists no encoder lr: frozen by default (docs/fidelity.md)
    pretrained_encoder: bool = True  # False: Table 5 "w/o Pre-training" (random skeleton encoder)
    cache_encoder_outputs: bool = False  # frozen encoder: encode each video once (memory: T x d a video)


# --- stage 3: SLT-GRPO (Sec. 3.3, Table 11) ----------------------------------------------------

def _grpo_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=8, optimizer="adamw", lr=2e-5, weight_decay=0.0, warmup_epochs=0,
                       scheduler="constant", eval_every_steps=100)


def _grpo_lora_defaults() -> LLMConfig:
    return LLMConfig(lora_r=64, lora_alpha=128, lora_dropout=0.05)


@dataclass
class GRPOParams:
    """Sampling, reward and loss settings of Eqs. 15-19."""

    num_generations: int = 8  # Table 11 "Responses"
    epsilon: float = 0.2  # clip range (DeepSeekMath / TRL default; the paper gives none)
    beta: float = 0.04  # KL weight (DeepSeekMath / TRL default; the paper gives none)
    mu: int = 1  # policy updates per sampled batch
    reward: str = "both"  # bleu | rouge | both (Table 7)
    reward_lambda: float = 0.5  # Eq. 15, Sec. 4.1
    short_punct: bool = True  # Sec. 6.3: punctuation appended to very short sentences
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64


@dataclass
class GRPOConfig:
    data: DataConfig = field(default_factory=DataConfig)
    llm: LLMConfig = field(default_factory=_grpo_lora_defaults)  # the new adapter (Table 11)
    train: TrainConfig = field(default_factory=_grpo_train_defaults)
    grpo: GRPOParams = field(default_factory=GRPOParams)
    # Filled from the SFT checkpoint (--init): how to rebuild the merged SFT model.
    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    sft_llm: LLMConfig = field(default_factory=LLMConfig)
    projector_lr: float = 0.0  # unused: encoder and projector are frozen in stage 3
    encoder_lr: float = 0.0
    cache_encoder_outputs: bool = False  # the encoder is frozen: encode each video once
