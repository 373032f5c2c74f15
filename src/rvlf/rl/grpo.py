"""GRPO maths (Eqs. 16-19): group-normalised advantages and the clipped, KL-regularised loss.

This is DeepSeekMath's GRPO with the k3 KL estimator, aggregated as TRL's `loss_type="grpo"`:
per-token objective, mean over each sequence's real tokens, mean over sequences, negated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

STD_EPS = 1e-4


def group_advantages(rewards: Tensor | Sequence[float], group_size: int) -> Tensor:
    """Eq. 16: `(r - group mean) / (group unbiased std + 1e-4)`, float32 `[N]`.

    `rewards` is laid out group after group (all samples of input 0, then of input 1, ...).
    A flat group (all rewards equal) and `group_size == 1` give exact zeros.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64)
    if r.ndim != 1 or group_size < 1 or r.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(r.shape)} do not split into groups of {group_size}")
    if group_size == 1:
        return torch.zeros_like(r, dtype=torch.float32)
    g = r.view(-1, group_size)
    adv = (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + STD_EPS)
    flat = g.amax(1, keepdim=True) == g.amin(1, keepdim=True)
    return adv.masked_fill(flat, 0.0).reshape(-1).to(torch.float32)


def flat_groups(rewards: Tensor | Sequence[float], group_size: int) -> Tensor:
    """`[N / group_size]` bool: True for a group whose rewards are all equal (its advantages are 0,
    so only the KL term of Eq. 19 acts on it). Layout as in `group_advantages`."""
    r = torch.as_tensor(rewards, dtype=torch.float64)
    if r.ndim != 1 or group_size < 1 or r.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(r.shape)} do not split into groups of {group_size}")
    g = r.view(-1, group_size)
    return g.amax(1) == g.amin(1)


def grpo_loss_terms(logps: Tensor, old_logps: Tensor, ref_logps: Tensor | None, advantages: Tensor,
                    mask: Tensor, epsilon: float = 0.2, beta: float = 0.04) -> tuple[Tensor, dict[str, float]]:
    """Eqs. 17-19 per token, and statistics for logging.

    Args:
        logps, old_logps, ref_logps: `[N, T]` log-probabilities of the sampled tokens under the
            policy (with gradient), the sampling policy and the reference policy. `ref_logps` may be
            None only when `beta == 0`.
        advantages: `[N]` (one per completion, `group_advantages`).
        mask: `[N, T]`, True on completion tokens.

    Per token: `ratio = exp(logps - old_logps)`, objective
    `min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) - beta * KL`, with the k3 estimator
    `KL = exp(ref - logp) - (ref - logp) - 1`. The loss is minus the mean over sequences of each
    sequence's mean over its real tokens. Statistics (detached, over real tokens): `kl`,
    `clip_low` (ratio < 1 - eps with A < 0), `clip_high` (ratio > 1 + eps with A > 0), `clip`
    (their sum), `ratio`.
    """
    if ref_logps is None and beta != 0.0:
        raise ValueError("ref_logps is required when beta != 0")
    real = mask.bool()
    zero = logps.new_zeros(())
    adv = advantages.to(logps.dtype).reshape(-1, 1)
    # padding is zeroed before exp, so any value there (even inf) leaves loss and gradients alone
    ratio = torch.exp(torch.where(real, logps - old_logps, zero))
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon)
    objective = torch.minimum(ratio * adv, clipped * adv)
    if ref_logps is not None:
        delta = torch.where(real, ref_logps - logps, zero)
        kl = torch.exp(delta) - delta - 1.0
    else:
        kl = torch.zeros_like(logps)
    if beta != 0.0:
        objective = objective - beta * kl
    n_real = real.sum(1).to(logps.dtype)
    per_seq = torch.where(real, objective, zero).sum(1) / n_real.clamp(min=1.0)
    loss = -per_seq.mean()

    with torch.no_grad():
        n_tok = n_real.sum().clamp(min=1.0)
        low = real & (ratio < 1.0 - epsilon) & (adv < 0)
        high = real & (ratio > 1.0 + epsilon) & (adv > 0)
        stats = {
            "kl": float(torch.where(real, kl, zero).sum() / n_tok),
            "clip_low": float(low.sum() / n_tok),
            "clip_high": float(high.sum() / n_tok),
            "clip": float((low | high).sum() / n_tok),
            "ratio": float(torch.where(real, ratio, zero).sum() / n_tok),
        }
    return loss, stats


def grpo_loss(logps: Tensor, old_logps: Tensor, ref_logps: Tensor | None, advantages: Tensor, mask: Tensor,
              epsilon: float = 0.2, beta: float = 0.04) -> Tensor:
    """The scalar GRPO loss (see `grpo_loss_terms`)."""
    return grpo_loss_terms(logps, old_logps, ref_logps, advantages, mask, epsilon, beta)[0]
