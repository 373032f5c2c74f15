"""CoSign-style grouped spatial-temporal GCN over the 77-point layout (Sec. 3.1, Sec. 6.1).

Each part of `rvlf.data.keypoints.PARTS` (body, left hand, right hand, mouth, face) is its own
graph, so every group learns its own co-occurrence pattern (CoSign). Per group: a stack of
ST-GCN blocks, each a spatial graph convolution over two adjacency subsets (self, and the
symmetric-normalised bones of `PART_EDGES`) plus a learned per-group adjacency offset (zero at
start), then a temporal convolution, with LayerNorm and a residual. Node features are mean-
pooled per frame, the groups concatenated and projected to `out_dim` (512).

Padding never reaches real frames: features are zeroed at padded frames before every temporal
convolution, so a real frame's output is the same whatever padding follows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rvlf.data.keypoints import PART_EDGES, PARTS


def part_adjacency(num_nodes: int, edges: Sequence[tuple[int, int]]) -> torch.Tensor:
    """`[2, V, V]`: identity and `D^-1/2 A D^-1/2` of the undirected bone graph (isolated nodes: 0)."""
    adj = torch.zeros(num_nodes, num_nodes)
    if edges:
        idx = torch.tensor(list(edges), dtype=torch.long)
        adj[idx[:, 0], idx[:, 1]] = 1.0
        adj[idx[:, 1], idx[:, 0]] = 1.0
    deg = adj.sum(1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-6).rsqrt(), torch.zeros_like(deg))
    return torch.stack([torch.eye(num_nodes), inv_sqrt[:, None] * adj * inv_sqrt[None, :]])


class MaskedInputNorm(nn.Module):
    """ST-GCN's input batch norm (`data_bn`) per (node, channel), with statistics of real frames only.

    Keypoints come part-normalised but with a large constant structure (each finger sits at a
    typical offset from its wrist); standardising every coordinate lets the graph convolutions
    see the motion. Padded frames never enter the statistics and stay zero.
    """

    def __init__(self, num_nodes: int, channels: int, momentum: float = 0.1, eps: float = 1e-4):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_nodes, channels))
        self.bias = nn.Parameter(torch.zeros(num_nodes, channels))
        self.register_buffer("running_mean", torch.zeros(num_nodes, channels))
        self.register_buffer("running_var", torch.ones(num_nodes, channels))

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """`x [B,T,V,C]`, `frame_mask [B,T]` -> standardised `x`, zero at padded frames."""
        keep = frame_mask[:, :, None, None].to(x.dtype)
        if self.training:
            n = keep.sum().clamp(min=1.0)
            mean = (x * keep).sum(dim=(0, 1)) / n
            var = (((x - mean) ** 2) * keep).sum(dim=(0, 1)) / n
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return ((x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias) * keep


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels of a `[B,C,T,V]` map (per frame and node: padding-independent)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class STGCNBlock(nn.Module):
    """Spatial graph conv (fixed subsets + learned offset) -> temporal conv, residual; `[B,C,T,V]`."""

    def __init__(self, in_ch: int, out_ch: int, adjacency: torch.Tensor, temporal_kernel: int, dropout: float):
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.learned_adjacency = nn.Parameter(torch.zeros_like(adjacency))
        self.spatial = nn.Conv2d(in_ch, out_ch * adjacency.shape[0], kernel_size=1)
        self.norm1 = ChannelNorm(out_ch)
        self.temporal = nn.Conv2d(out_ch, out_ch, (temporal_kernel, 1), padding=(temporal_kernel // 2, 0))
        self.norm2 = ChannelNorm(out_ch)
        self.residual = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, kernel_size=1)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """`x [B,C,T,V]`, `keep [B,1,T,1]` float (1 = real frame)."""
        b, _, t, v = x.shape
        k = self.adjacency.shape[0]
        h = self.spatial(x).view(b, k, -1, t, v)
        h = torch.einsum("bkctv,kvw->bctw", h, self.adjacency + self.learned_adjacency)
        h = self.act(self.norm1(h)) * keep
        h = self.norm2(self.temporal(self.dropout(h)))
        return self.act(h + self.residual(x)) * keep


class PartGCN(nn.Module):
    """The ST-GCN stack of one group: `[B,T,V,C_in] -> [B,T,C_last]` (mean over nodes)."""

    def __init__(self, num_nodes: int, edges: Sequence[tuple[int, int]], in_channels: int,
                 channels: Sequence[int], temporal_kernel: int, dropout: float):
        super().__init__()
        adjacency = part_adjacency(num_nodes, edges)
        widths = [in_channels, *channels]
        self.blocks = nn.ModuleList(
            STGCNBlock(a, b, adjacency, temporal_kernel, dropout) for a, b in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = x.permute(0, 3, 1, 2) * keep  # [B,C,T,V]
        for block in self.blocks:
            h = block(h, keep)
        return h.mean(dim=3).transpose(1, 2)


class GroupedGCN(nn.Module):
    """`[B,T,77,C] keypoints, [B,T] frame mask -> [B,T,out_dim]` (zero at padded frames)."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (64, 64, 128), out_dim: int = 512,
                 temporal_kernel: int = 5, dropout: float = 0.1, share_hands: bool = True):
        super().__init__()
        self.parts = dict(PARTS)
        self.share_hands = share_hands

        def make(part: str) -> PartGCN:
            sl = self.parts[part]
            return PartGCN(sl.stop - sl.start, PART_EDGES[part], in_channels, channels, temporal_kernel, dropout)

        self.input_norm = MaskedInputNorm(sum(sl.stop - sl.start for sl in self.parts.values()), in_channels)
        self.groups = nn.ModuleDict({p: make(p) for p in self.parts if not (share_hands and p == "right_hand")})
        self.proj = nn.Sequential(nn.Linear(channels[-1] * len(self.parts), out_dim), nn.LayerNorm(out_dim))

    def group(self, part: str) -> PartGCN:
        """The module of `part` (the right hand uses the left hand's when hands share weights)."""
        return self.groups["left_hand" if self.share_hands and part == "right_hand" else part]

    def forward(self, keypoints: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        keep = frame_mask[:, None, :, None].to(keypoints.dtype)
        keypoints = self.input_norm(keypoints, frame_mask)
        feats = [self.group(p)(keypoints[:, :, sl], keep) for p, sl in self.parts.items()]
        return self.proj(torch.cat(feats, dim=-1)) * frame_mask[..., None].to(keypoints.dtype)
