"""Optimiser and learning-rate schedule of the training shell (Tables 9-11, Sec. 6.3)."""

from __future__ import annotations

import math

import torch

from rvlf.config import TrainConfig
from rvlf.errors import TrainingError


def make_scheduler(optimizer, kind: str, warmup_steps: int, total_steps: int, decay_fraction: float = 0.2):
    """Linear warm-up, then one of: `cosine` decay to 0 (cycle decay 1.0, Tables 9-10); a
    `constant` lr; or `wsd` (warm-up, stable, decay): constant, then a linear decay to 0 over the
    last `decay_fraction` of the steps."""
    if kind not in ("cosine", "constant", "wsd"):
        raise TrainingError(f"train.scheduler: unknown scheduler {kind!r} (cosine, constant or wsd)")
    if not 0.0 < decay_fraction <= 1.0:
        raise TrainingError(f"train.decay_fraction must be in (0, 1], got {decay_fraction}")
    decay_start = max(warmup_steps, int(round(total_steps * (1.0 - decay_fraction))))

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        if kind == "wsd":
            if step < decay_start:
                return 1.0
            return max(0.0, (total_steps - step) / max(1, total_steps - decay_start))
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise TrainingError("nothing to train: no parameter requires a gradient")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise TrainingError(f"train.optimizer: unknown optimizer {cfg.optimizer!r} (sgd or adamw)")
