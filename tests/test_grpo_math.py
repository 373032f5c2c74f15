"""GRPO advantages (Eq. 16) and loss (Eqs. 17-19) against hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from rvlf.rl.grpo import flat_groups, group_advantages, grpo_loss, grpo_loss_terms


# --- advantages ---------------------------------------------------------------------------------

def test_group_advantages_by_hand_group_after_group():
    adv = group_advantages([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 1.0, 1.0], group_size=4)
    std1 = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # unbiased
    expected1 = [(r - 2.5) / (std1 + 1e-4) for r in (1, 2, 3, 4)]
    std2 = math.sqrt(4 * 0.5**2 / 3)
    expected2 = [(r - 0.5) / (std2 + 1e-4) for r in (0, 0, 1, 1)]
    assert adv.dtype == torch.float32 and adv.shape == (8,)
    assert adv.tolist() == pytest.approx(expected1 + expected2, rel=1e-6)


def test_flat_group_gives_exact_zeros():
    adv = group_advantages(torch.tensor([0.1] * 8 + [0.3, 0.7, 0.3, 0.7, 0.3, 0.7, 0.3, 0.7]), group_size=8)
    assert torch.isfinite(adv).all()
    assert (adv[:8] == 0).all()
    assert (adv[8:] != 0).all()


def test_flat_groups_are_the_groups_of_equal_rewards():
    rewards = [0.1] * 4 + [0.0, 0.5, 0.0, 0.0] + [0.0] * 4
    assert flat_groups(rewards, 4).tolist() == [True, False, True]
    assert float(flat_groups(rewards, 4).float().mean()) == pytest.approx(2 / 3)
    adv = group_advantages(rewards, 4).view(3, 4)
    assert ((adv == 0).all(1) == flat_groups(rewards, 4)).all()
    with pytest.raises(ValueError):
        flat_groups(rewards, 5)


def test_group_size_one_and_bad_layout():
    assert group_advantages([0.2, 0.9, 0.5], group_size=1).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages([0.1] * 6, group_size=4)


# --- loss ---------------------------------------------------------------------------------------

def _hand_loss(logps, old, ref, adv, mask, eps, beta):
    """Token loops with `math`, independent of the implementation."""
    per_seq = []
    for i in range(len(logps)):
        terms = []
        for t in range(len(logps[i])):
            if not mask[i][t]:
                continue
            ratio = math.exp(logps[i][t] - old[i][t])
            clipped = min(max(ratio, 1 - eps), 1 + eps)
            d = ref[i][t] - logps[i][t]
            kl = math.exp(d) - d - 1
            terms.append(min(ratio * adv[i], clipped * adv[i]) - beta * kl)
        per_seq.append(sum(terms) / max(len(terms), 1))
    return -sum(per_seq) / len(per_seq)


def _case():
    logps = [[-1.0, -0.5, -2.0], [-0.3, -1.2, -0.9], [-2.2, -0.1, -0.7]]
    old = [[-1.1, -0.9, -1.5], [-0.3, -0.6, -1.0], [-2.0, -0.4, -0.7]]
    ref = [[-1.3, -0.4, -2.5], [-0.2, -1.0, -1.1], [-2.1, -0.3, -0.2]]
    adv = [1.5, -0.7, 0.4]
    mask = [[True, True, True], [True, True, False], [True, False, False]]
    return logps, old, ref, adv, mask


def _tensors(logps, old, ref, adv, mask):
    return (torch.tensor(logps, dtype=torch.float64, requires_grad=True), torch.tensor(old, dtype=torch.float64),
            torch.tensor(ref, dtype=torch.float64), torch.tensor(adv, dtype=torch.float64), torch.tensor(mask))


@pytest.mark.parametrize("eps,beta", [(0.2, 0.04), (0.2, 0.0), (0.1, 0.5)])
def test_loss_matches_hand_computation(eps, beta):
    case = _case()
    loss = grpo_loss(*_tensors(*case), epsilon=eps, beta=beta)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(_hand_loss(*case, eps, beta), rel=1e-12)


def test_loss_is_mean_over_sequences_of_token_means():
    # sequence 0 has 3 real tokens with objective A * 1, sequence 1 has 1 token with objective 0
    logps = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    loss = grpo_loss(logps, torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([2.0, 0.0]), mask)
    assert loss.item() == pytest.approx(-(2.0 + 0.0) / 2)  # a token mean would give -6/4


def test_clipping_on_both_sides():
    eps = 0.2
    # token 0: A > 0, ratio 1.5 > 1 + eps -> clipped at 1.2 (no gradient)
    # token 1: A < 0, ratio 0.5 < 1 - eps -> clipped at 0.8 (no gradient)
    # token 2: A > 0, ratio 0.5 -> min picks the unclipped 0.5 * A (gradient flows)
    # token 3: A < 0, ratio 1.5 -> min picks the unclipped 1.5 * A (gradient flows)
    old = torch.zeros(4, 1, dtype=torch.float64)
    logps = torch.log(torch.tensor([[1.5], [0.5], [0.5], [1.5]], dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    mask = torch.ones(4, 1, dtype=torch.bool)
    loss, stats = grpo_loss_terms(logps, old, None, adv, mask, epsilon=eps, beta=0.0)
    objective = [1.2 * 1.0, 0.8 * -1.0, 0.5 * 1.0, 1.5 * -1.0]
    assert loss.item() == pytest.approx(-sum(objective) / 4)
    loss.backward()
    grad = logps.grad.flatten().tolist()
    assert grad[0] == 0.0 and grad[1] == 0.0
    # d(-ratio * A / 4)/d logp = -ratio * A / 4
    assert grad[2] == pytest.approx(-0.5 * 1.0 / 4) and grad[3] == pytest.approx(-1.5 * -1.0 / 4)
    assert stats["clip_high"] == pytest.approx(0.25) and stats["clip_low"] == pytest.approx(0.25)
    assert stats["clip"] == pytest.approx(0.5)
    assert stats["ratio"] == pytest.approx((1.5 + 0.5 + 0.5 + 1.5) / 4)
    assert stats["kl"] == 0.0


def test_flat_group_leaves_only_the_kl_term():
    rewards = [0.4] * 4
    adv = group_advantages(rewards, group_size=4).double()
    logps = torch.tensor([[-1.0, -2.0]] * 4, dtype=torch.float64, requires_grad=True)
    old = logps.detach() + 0.3
    ref = logps.detach() - 0.5
    mask = torch.ones(4, 2, dtype=torch.bool)
    assert grpo_loss(logps, old, ref, adv, mask, beta=0.0).item() == 0.0
    loss, stats = grpo_loss_terms(logps, old, ref, adv, mask, beta=0.1)
    kl = math.exp(-0.5) + 0.5 - 1
    assert loss.item() == pytest.approx(0.1 * kl) and stats["kl"] == pytest.approx(kl)


def test_masked_tokens_do_not_change_loss_or_gradients():
    logps, old, ref, adv, mask = _tensors(*_case())
    loss = grpo_loss(logps, old, ref, adv, mask)
    loss.backward()
    grad = logps.grad.clone()

    pad = ~mask
    for fill_logp, fill_old, fill_ref in [(40.0, -50.0, 30.0), (float("-inf"), float("-inf"), float("nan"))]:
        logps2 = logps.detach().masked_fill(pad, fill_logp).requires_grad_()
        old2, ref2 = old.masked_fill(pad, fill_old), ref.masked_fill(pad, fill_ref)
        loss2, stats2 = grpo_loss_terms(logps2, old2, ref2, adv, mask)
        loss2.backward()
        assert loss2.item() == pytest.approx(loss.item(), rel=1e-12)
        assert torch.allclose(logps2.grad[mask], grad[mask]) and (logps2.grad[pad] == 0).all()
        assert stats2 == pytest.approx(grpo_loss_terms(logps, old, ref, adv, mask)[1])


def test_gradient_descent_raises_positive_and_lowers_negative_advantage():
    logps = torch.full((2, 3), -1.0, requires_grad=True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 3, dtype=torch.bool)
    loss = grpo_loss(logps, logps.detach(), logps.detach(), adv, mask)
    loss.backward()
    stepped = logps.detach() - 0.1 * logps.grad
    assert (stepped[0] > -1.0).all() and (stepped[1] < -1.0).all()


def test_reference_required_when_kl_is_on():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="ref_logps"):
        grpo_loss(x, x, None, torch.ones(1), torch.ones(1, 2, dtype=torch.bool), beta=0.04)
