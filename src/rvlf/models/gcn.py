"""CoSign-style grouped spatial-temporal GCN over the 77-point layout (Sec. 3.1, Sec. 6.1).

Each part of `rvlf.data.keypoints.PARTS` (body, left hand, right hand, mouth, face) is its own
graph, so every group learns its own co-occurrence pattern (CoSign). Per group: a stack of
ST-GCN blocks, each a spatial graph convolution over two adjacency subsets (self, and the
symmetric-normalised bones of `PART_EDGES`) plus a learned per-group adjacency offset (zero at
start), then a temporal convolution, with LayerNorm and a residual. Node features are mean-
pooled per frame, the groups concatenated and projected to `out_dim` (512).

Padding never reaches real frames: features are zeroed at padded frames before every temporal
convolution, so a real frame's output is the same whatever padding follows it. Padded frames are not
computed at all: `GroupedGCN` packs the videos of a batch end to end (`pack_frames`), so a batch
padded to 1.5x its mean length costs its real frames only (forward bit-identical to the padded
computation; gradients equal up to float summation order).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


class STGCNBlock(nn.Module):
    """Spatial graph conv (fixed subsets + learned offset) -> temporal conv, residual.

    Channels-last (`[B,T,V,C]`) throughout, so LayerNorm and the 1x1 convolutions are plain
    matmuls over the last dimension with no layout copies. The graph aggregation runs on the
    block's input before the channel projection (`sum_k A_k X W_k = [A_1 X, .., A_K X] W`, fewer
    channels to mix); the temporal convolution (kernel `k` over frames, all channels mixed, as
    ST-GCN's `(k,1)` Conv2d) is a Linear over the `k` stacked neighbouring frames. ReLU as in ST-GCN.
    """

    def __init__(self, in_ch: int, out_ch: int, adjacency: torch.Tensor, temporal_kernel: int):
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.learned_adjacency = nn.Parameter(torch.zeros_like(adjacency))
        self.kernel = temporal_kernel
        self.spatial = nn.Linear(in_ch * adjacency.shape[0], out_ch)
        self.norm1 = nn.LayerNorm(out_ch)
        self.temporal = nn.Linear(out_ch * temporal_kernel, out_ch)
        self.norm2 = nn.LayerNorm(out_ch)
        self.residual = nn.Identity() if in_ch == out_ch else nn.Linear(in_ch, out_ch)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """`x [B,T,V,C]`, `keep [B,T,1,1]` float (1 = real frame)."""
        mixed = torch.einsum("btvc,kvw->btwkc", x, self.adjacency + self.learned_adjacency)
        h = self.act(self.norm1(self.spatial(mixed.flatten(3)))) * keep
        pad = self.kernel // 2
        frames = F.pad(h, (0, 0, 0, 0, pad, pad)).unfold(1, self.kernel, 1)  # [B,T,V,C,k]
        h = self.norm2(self.temporal(frames.flatten(3)))
        return self.act(h + self.residual(x)) * keep


class PartGCN(nn.Module):
    """The ST-GCN stack of one group: `[B,T,V,C_in] -> [B,T,C_last]` (mean over nodes, then
    dropout: one mask on the pooled features instead of one per block, far cheaper on CPU)."""

    def __init__(self, num_nodes: int, edges: Sequence[tuple[int, int]], in_channels: int,
                 channels: Sequence[int], temporal_kernel: int, dropout: float):
        super().__init__()
        adjacency = part_adjacency(num_nodes, edges)
        widths = [in_channels, *channels]
        self.blocks = nn.ModuleList(
            STGCNBlock(a, b, adjacency, temporal_kernel) for a, b in zip(widths[:-1], widths[1:])
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = x * keep
        for block in self.blocks:
            h = block(h, keep)
        return self.dropout(h.mean(dim=2))


def pack_frames(frame_mask: torch.Tensor, gap: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Indices that lay the videos of a padded batch end to end, `gap` empty frames between them.

    `frame_mask [B,T]` (True = real frame). Video `b` keeps its frames `0 .. L_b-1`, `L_b` = its last
    real frame + 1 (frames masked inside that span stay, as masked frames). Returns `(src, dst, N)`:
    frame `src[i]` of the flattened `[B*T]` batch goes to row `dst[i]` of a packed sequence of `N`
    frames; the rows in no `dst` are the gaps. With `gap` >= half the temporal kernel, a convolution
    over the packed sequence (gaps zero) sees at every real frame exactly what it sees in the padded
    batch (zeros past either end), so padded frames need not be computed.
    """
    b, t = frame_mask.shape
    pos = torch.arange(t, device=frame_mask.device)
    lengths = ((pos + 1) * frame_mask).amax(dim=1) if t else frame_mask.new_zeros(b, dtype=torch.long)
    span = lengths + gap
    starts = torch.cumsum(span, 0) - span
    inside = pos[None, :] < lengths[:, None]
    src = (torch.arange(b, device=frame_mask.device)[:, None] * t + pos[None, :])[inside]
    dst = (starts[:, None] + pos[None, :])[inside]
    return src, dst, int(span.sum())


class GroupedGCN(nn.Module):
    """`[B,T,77,C] keypoints, [B,T] frame mask -> [B,T,out_dim]` (zero at padded frames).

    The groups run on the batch's real frames only, packed end to end (`pack_frames`)."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (64, 64, 128), out_dim: int = 512,
                 temporal_kernel: int = 5, dropout: float = 0.1, share_hands: bool = True):
        super().__init__()
        self.parts = dict(PARTS)
        self.share_hands = share_hands
        self.gap = temporal_kernel // 2  # empty frames between packed videos

        def make(part: str) -> PartGCN:
            sl = self.parts[part]
            return PartGCN(sl.stop - sl.start, PART_EDGES[part], in_channels, channels, temporal_kernel, dropout)

        self.input_norm = MaskedInputNorm(sum(sl.stop - sl.start for sl in self.parts.values()), in_channels)
        self.groups = nn.ModuleDict({p: make(p) for p in self.parts if not (share_hands and p == "right_hand")})
        self.proj = nn.Sequential(nn.Linear(channels[-1] * len(self.parts), out_dim), nn.LayerNorm(out_dim))

    def group(self, part: str) -> PartGCN:
        """The module of `part` (the right hand uses the left hand's when hands share weights)."""
        return self.groups["left_hand" if self.share_hands and part == "right_hand" else part]

    def forward(self, keypoints: torch.Tensor, frame_mask: torch.Tensor, pack: bool = True) -> torch.Tensor:
        """`keypoints [B,T,77,C]`, `frame_mask [B,T]` -> `[B,T,out_dim]`. `pack=False` runs the groups on
        the padded batch itself, every padded frame computed: the reference the packed path is tested
        (tests/test_gcn.py) and timed (benchmarks, item 3) against."""
        frame_mask = frame_mask.bool()
        x = self.input_norm(keypoints, frame_mask)  # statistics over the real frames of the padded batch
        if not pack:
            return self._groups(x, frame_mask[:, :, None, None].to(x.dtype)) * frame_mask[..., None].to(x.dtype)
        b, t, v, c = x.shape
        src, dst, n = pack_frames(frame_mask, self.gap)
        out_dim = self.proj[0].out_features
        if n == 0:
            return x.new_zeros(b, t, out_dim)
        packed = x.new_zeros(n, v, c).index_copy(0, dst, x.reshape(b * t, v, c).index_select(0, src))
        real = frame_mask.new_zeros(n).index_copy(0, dst, frame_mask.reshape(-1).index_select(0, src))
        h = self._groups(packed[None], real[None, :, None, None].to(x.dtype))[0]  # [N, out_dim]
        out = h.new_zeros(b * t, out_dim).index_copy(0, src, h.index_select(0, dst))
        return out.reshape(b, t, out_dim) * frame_mask[..., None].to(x.dtype)

    def _groups(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Every group's GCN on its nodes of `x [B,T,77,C]`, concatenated and projected: `[B,T,out_dim]`."""
        return self.proj(torch.cat([self.group(p)(x[:, :, sl], keep) for p, sl in self.parts.items()], dim=-1))
