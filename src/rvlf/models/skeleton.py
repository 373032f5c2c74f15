"""The skeleton encoder (Eq. 1): grouped GCN, then a 3-layer mBART encoder (Sec. 3.1, Sec. 6.3).

Sec. 6.3: "the skeleton encoder is implemented as a mBART encoder with three layers" (8 heads,
hidden 512, FF 2048). The GCN's per-frame features enter `transformers`' `MBartEncoder` as
`inputs_embeds` (learned positions, embedding LayerNorm, pre-LN layers, final LayerNorm); its
token table is unused and dropped. Sequences longer than `max_frames` (300, Sec. 7.1) are cut.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import MBartConfig
from transformers.models.mbart.modeling_mbart import MBartEncoder

from rvlf.errors import RvlfError
from rvlf.models.configs import SkeletonEncoderConfig  # noqa: F401 - re-exported
from rvlf.models.gcn import GroupedGCN


class SkeletonEncoder(nn.Module):
    """`keypoints [B,T,77,3], frame_mask [B,T] -> (Z_s [B,T',d_model], mask [B,T'])`, `T' = min(T, max_frames)`."""

    def __init__(self, config: SkeletonEncoderConfig):
        super().__init__()
        self.config = config
        self.gcn = GroupedGCN(config.in_channels, config.gcn_channels, config.d_model, config.temporal_kernel,
                              config.dropout, config.share_hands)
        mbart = MBartConfig(
            vocab_size=1,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
            forced_eos_token_id=None,
            decoder_start_token_id=None,
            d_model=config.d_model,
            encoder_layers=config.num_layers,
            encoder_attention_heads=config.num_heads,
            encoder_ffn_dim=config.ff_dim,
            dropout=config.dropout,
            attention_dropout=config.dropout,
            activation_dropout=config.dropout,
            encoder_layerdrop=0.0,
            max_position_embeddings=config.max_frames,
        )
        self.transformer = MBartEncoder(mbart)
        self.transformer.embed_tokens = None  # inputs are GCN features, never token ids

    def forward(self, keypoints: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if keypoints.dim() != 4 or keypoints.shape[2:] != (cfg.num_points, cfg.in_channels):
            raise RvlfError(f"keypoints must be [B,T,{cfg.num_points},{cfg.in_channels}], got {tuple(keypoints.shape)}")
        keypoints, mask = keypoints[:, : cfg.max_frames], frame_mask[:, : cfg.max_frames].bool()
        h = self.gcn(keypoints, mask)
        z = self.transformer(inputs_embeds=h, attention_mask=mask.long()).last_hidden_state
        return z * mask[..., None].to(z.dtype), mask
