"""The model configs: the skeleton encoder (Eq. 1), the DINOv2 fusion and projector (Eqs. 12-13)
and the stage-1 VLP model (Eqs. 2-11, Table 9).

Plain dataclasses with typed, range-checked fields (`rvlf.config`'s pydantic types), kept apart from
the `torch` modules that use them so that a config is loaded and checked without importing torch.
`rvlf.models.skeleton`, `.fusion` and `.vlp` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator

from rvlf.config import Bool, Dropout, Float, PosFloat, PosInt, PosIntList, Probability, Section
from rvlf.errors import ConfigError

HAND_MERGES = ("mean", "sum")


def _odd(value: int) -> int:
    if value % 2 != 1:
        raise ValueError("must be odd (the temporal window is centred on its frame)")
    return value


def _heads_divide(d_model: int, num_heads: int) -> None:
    if isinstance(d_model, int) and isinstance(num_heads, int) and num_heads > 0 and d_model % num_heads:
        raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")


@dataclass
class SkeletonEncoderConfig(Section):
    """Grouped GCN + mBART encoder (Sec. 3.1, 6.3); widths in channels, `max_frames` in frames."""

    num_points: PosInt = 77
    in_channels: PosInt = 3  # x, y, confidence
    gcn_channels: PosIntList = field(default_factory=lambda: [64, 64, 128])
    temporal_kernel: Annotated[PosInt, AfterValidator(_odd)] = 5
    share_hands: Bool = True
    d_model: PosInt = 512
    num_layers: PosInt = 3
    num_heads: PosInt = 8
    ff_dim: PosInt = 2048
    dropout: Dropout = 0.1
    max_frames: PosInt = 300

    def __post_init__(self) -> None:
        _heads_divide(self.d_model, self.num_heads)


@dataclass
class FusionConfig(Section):
    """Eq. 12 (`Z_s + alpha Z_face + beta Z_hand`) and the Eq. 13 projector `sign_dim -> hidden -> LLM`."""

    dino_dim: PosInt = 768  # facebook/dinov2-base
    sign_dim: PosInt = 512  # skeleton encoder width (d_model)
    alpha: Float = 1.0  # face weight, Eq. 12
    beta: Float = 1.0  # hand weight, Eq. 12
    use_face: Bool = True
    use_hand: Bool = True
    hand_merge: Literal["mean", "sum"] = "mean"  # HAND_MERGES
    projector_hidden: PosInt | None = None  # None -> the LLM's hidden size (Table 10: 512 -> 4096 -> 4096)

    def __post_init__(self) -> None:
        if self.hand_merge not in HAND_MERGES:
            raise ConfigError(f"fusion.hand_merge must be one of {HAND_MERGES}, got {self.hand_merge!r}")


@dataclass
class VLPConfig(Section):
    """Stage 1 (Table 9): the skeleton encoder, a 3 + 3 layer mBART text encoder/decoder, the
    contrastive head (Eqs. 3-9) and the translation loss (Eq. 10)."""

    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)
    d_model: PosInt = 512  # text encoder / decoder width (Table 9)
    text_layers: PosInt = 3  # the first three mBART encoder layers, re-initialised (Sec. 6.3)
    decoder_layers: PosInt = 3
    num_heads: PosInt = 8
    ff_dim: PosInt = 2048
    dropout: Dropout = 0.1
    contrastive_dim: PosInt = 1024  # Table 9, "Con Dimension"
    tau_init: PosFloat = 0.1  # Eq. 4, trainable; not given in the paper
    tau_prime: PosFloat = 0.07  # Eqs. 7-8; not given in the paper (CLIP's value)
    beta: Probability = 0.5  # Eq. 9 (beta L_S2T + (1 - beta) L_T2S); not given in the paper
    gather_negatives: Bool = True
    max_text_len: PosInt = 128
    label_smoothing: Dropout = 0.1  # in [0, 1)

    def __post_init__(self) -> None:
        _heads_divide(self.d_model, self.num_heads)
        if self.encoder.d_model != self.d_model:
            raise ValueError(f"encoder.d_model ({self.encoder.d_model}) must equal d_model ({self.d_model}): "
                             "the decoder cross-attends the skeleton features (Eq. 10)")
