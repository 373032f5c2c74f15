"""Fusion of skeleton features with DINOv2 face / hand cues (Eq. 12) and the MLP projector (Eq. 13).

`Z_e = Z_s + alpha * Z_face + beta * Z_hand`, where `Z_face` and `Z_hand` are the DINOv2 crop
features linearly projected to the skeleton width (Sec. 3.2). The two hands share one projection
and `Z_hand` is the mean of the projected hands that are present (`hand_merge="mean"`) or their sum
(`"sum"`); a crop whose feature vector is all zeros (features missing) contributes nothing.
`Z = MLP(Z_e)` is LLaVA's two-layer projector with GELU: 512 -> H -> H (Table 10).
"""

from __future__ import annotations

import torch
from torch import nn

from rvlf.models.configs import HAND_MERGES, FusionConfig  # noqa: F401 - re-exported

FACE, LEFT_HAND, RIGHT_HAND = 0, 1, 2  # order of the crops in `dino [B,T,3,D]`


class SignFusion(nn.Module):
    """Eq. 12 then Eq. 13: `(Z_s [B,T,sign_dim], dino [B,T,3,dino_dim] | None) -> Z [B,T,llm_hidden]`."""

    def __init__(self, config: FusionConfig, llm_hidden: int):
        super().__init__()
        self.config = config
        self.llm_hidden = llm_hidden
        self.face_proj = nn.Linear(config.dino_dim, config.sign_dim) if config.use_face else None
        self.hand_proj = nn.Linear(config.dino_dim, config.sign_dim) if config.use_hand else None
        hidden = config.projector_hidden or llm_hidden
        self.projector = nn.Sequential(
            nn.Linear(config.sign_dim, hidden), nn.GELU(), nn.Linear(hidden, llm_hidden)
        )

    @staticmethod
    def _project(proj: nn.Linear, feats: torch.Tensor) -> torch.Tensor:
        """Project crop features `[..., D]`; all-zero (missing) crops give zero vectors."""
        present = feats.abs().amax(dim=-1, keepdim=True) > 0
        return proj(feats.to(proj.weight.dtype)) * present

    def fuse(self, z_s: torch.Tensor, dino: torch.Tensor | None) -> torch.Tensor:
        """Eq. 12: `Z_e = Z_s + alpha Z_face + beta Z_hand`; switched-off or absent cues add nothing."""
        if dino is None or (self.face_proj is None and self.hand_proj is None):
            return z_s
        if dino.shape[:2] != z_s.shape[:2] or dino.shape[2] != 3 or dino.shape[3] != self.config.dino_dim:
            raise ValueError(
                f"dino features {tuple(dino.shape)} do not match skeleton features {tuple(z_s.shape)}"
                f" (expected [B,T,3,{self.config.dino_dim}])"
            )
        z_e = z_s
        if self.face_proj is not None:
            z_e = z_e + self.config.alpha * self._project(self.face_proj, dino[:, :, FACE])
        if self.hand_proj is not None:
            hands = dino[:, :, LEFT_HAND : RIGHT_HAND + 1]
            z_hands = self._project(self.hand_proj, hands)  # [B,T,2,sign_dim]
            z_hand = z_hands.sum(dim=2)
            if self.config.hand_merge == "mean":
                count = (hands.abs().amax(dim=-1) > 0).sum(dim=2, keepdim=True).clamp(min=1)
                z_hand = z_hand / count
            z_e = z_e + self.config.beta * z_hand
        return z_e

    def forward(self, z_s: torch.Tensor, dino: torch.Tensor | None = None) -> torch.Tensor:
        """Eqs. 12-13: fused features projected into the LLM's embedding space."""
        return self.projector(self.fuse(z_s, dino))
