"""Eq. 12 fusion of skeleton and DINOv2 features, Eq. 13 projector, and the ablation switches."""

from __future__ import annotations

import pytest
import torch

from rvlf.errors import ConfigError
from rvlf.models.fusion import FusionConfig, SignFusion

B, T, D_DINO, D_SIGN, H = 2, 5, 12, 8, 16


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D_SIGN, generator=g), torch.randn(B, T, 3, D_DINO, generator=g)


def _fusion(**kw) -> SignFusion:
    torch.manual_seed(0)
    return SignFusion(FusionConfig(dino_dim=D_DINO, sign_dim=D_SIGN, **kw), llm_hidden=H)


def test_projector_is_table10_mlp():
    f = _fusion()
    lin1, act, lin2 = f.projector
    assert (lin1.in_features, lin1.out_features, lin2.out_features) == (D_SIGN, H, H)
    assert isinstance(act, torch.nn.GELU)
    assert _fusion(projector_hidden=32).projector[0].out_features == 32
    z_s, dino = _inputs()
    assert f(z_s, dino).shape == (B, T, H)


def test_eq12_by_hand():
    f = _fusion(alpha=0.7, beta=1.3)
    z_s, dino = _inputs()
    face = f.face_proj(dino[:, :, 0])
    hand = (f.hand_proj(dino[:, :, 1]) + f.hand_proj(dino[:, :, 2])) / 2
    torch.testing.assert_close(f.fuse(z_s, dino), z_s + 0.7 * face + 1.3 * hand)
    torch.testing.assert_close(f(z_s, dino), f.projector(z_s + 0.7 * face + 1.3 * hand))
    f_sum = _fusion(hand_merge="sum")
    hand_sum = f_sum.hand_proj(dino[:, :, 1]) + f_sum.hand_proj(dino[:, :, 2])
    torch.testing.assert_close(f_sum.fuse(z_s, dino), z_s + f_sum.face_proj(dino[:, :, 0]) + hand_sum)


def test_missing_crops_add_nothing():
    f = _fusion()
    z_s, dino = _inputs()
    dino[0, :, 0] = 0  # sample 0: no face features
    dino[1, :, 1] = 0  # sample 1: no left hand
    out = f.fuse(z_s, dino)
    hand0 = (f.hand_proj(dino[0, :, 1]) + f.hand_proj(dino[0, :, 2])) / 2
    torch.testing.assert_close(out[0], z_s[0] + hand0)
    torch.testing.assert_close(out[1], z_s[1] + f.face_proj(dino[1, :, 0]) + f.hand_proj(dino[1, :, 2]))
    torch.testing.assert_close(f.fuse(z_s, torch.zeros_like(dino)), z_s)
    torch.testing.assert_close(f.fuse(z_s, None), z_s)


@pytest.mark.parametrize(
    "use_face, use_hand, sees",
    [(True, True, {0, 1, 2}), (True, False, {0}), (False, True, {1, 2}), (False, False, set())],
    ids=["full", "face-only", "hand-only", "no-dino"],
)
def test_ablations_change_what_the_model_sees(use_face, use_hand, sees):
    f = _fusion(use_face=use_face, use_hand=use_hand)
    assert (f.face_proj is not None, f.hand_proj is not None) == (use_face, use_hand)
    z_s, dino = _inputs()
    base = f(z_s, dino)
    for crop in range(3):
        changed = dino.clone()
        changed[:, :, crop] += 1.0
        moved = not torch.allclose(f(z_s, changed), base)
        assert moved == (crop in sees), f"crop {crop}"
    if not sees:
        torch.testing.assert_close(base, f.projector(z_s))


def test_gradients_reach_projections_and_projector():
    f = _fusion()
    z_s, dino = _inputs()
    f(z_s, dino).square().sum().backward()
    for name, p in f.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs():
    with pytest.raises(ConfigError, match="hand_merge"):
        FusionConfig(hand_merge="max")
    f = _fusion()
    z_s, dino = _inputs()
    with pytest.raises(ValueError, match="dino features"):
        f(z_s, dino[:, :-1])
    with pytest.raises(ValueError, match="dino features"):
        f(z_s, dino[..., :-1])


def test_no_dino_model_ignores_crop_features():
    from rvlf.models.fusion import FusionConfig, SignFusion

    fusion = SignFusion(FusionConfig(sign_dim=8, use_face=False, use_hand=False), llm_hidden=16)
    z_s = torch.randn(2, 5, 8)
    assert torch.equal(fusion(z_s, torch.randn(2, 5, 3, 768)), fusion(z_s, None))
