"""Skeleton encoder (Eq. 1): shapes, masks, the 300-frame cut, padding, errors, real keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvlf.errors import RvlfError
from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig


def _encoder(**kw) -> SkeletonEncoder:
    torch.manual_seed(0)
    cfg = SkeletonEncoderConfig(**{"gcn_channels": [8, 16], "d_model": 32, "num_heads": 4, "ff_dim": 64,
                                   "dropout": 0.0, **kw})
    return SkeletonEncoder(cfg)


def test_paper_defaults():
    cfg = SkeletonEncoderConfig()
    assert (cfg.num_points, cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.ff_dim, cfg.max_frames) == (
        77, 512, 3, 8, 2048, 300)
    enc = SkeletonEncoder(cfg)
    assert len(enc.transformer.layers) == 3
    assert enc.transformer.layers[0].fc1.out_features == 2048


def test_shapes_masks_and_cut_to_max_frames():
    enc = _encoder(max_frames=10).eval()
    x = torch.randn(3, 14, 77, 3)
    mask = torch.ones(3, 14, dtype=torch.bool)
    mask[1, 6:] = False
    z, m = enc(x, mask)
    assert z.shape == (3, 10, 32) and m.shape == (3, 10) and m.dtype == torch.bool
    assert m.sum(1).tolist() == [10, 6, 10]
    assert z[1, 6:].abs().max() == 0 and torch.isfinite(z).all()


def test_padding_invariance_in_train_and_eval():
    enc = _encoder()
    real = torch.randn(1, 8, 77, 3)
    padded = torch.cat([real, torch.randn(1, 5, 77, 3)], dim=1)
    mask = torch.arange(13)[None] < 8
    for mode in (True, False):
        enc.train(mode)
        z_pad, _ = enc(padded, mask)
        z_real, _ = enc(real, torch.ones(1, 8, dtype=torch.bool))
        torch.testing.assert_close(z_pad[:, :8], z_real, atol=1e-5, rtol=1e-5)


def test_frames_attend_to_each_other():
    """The transformer gives every frame the whole sequence as context."""
    enc = _encoder(num_layers=1, gcn_channels=[8]).eval()
    x = torch.randn(1, 20, 77, 3)
    y = x.clone()
    y[0, -1] += 1.0
    mask = torch.ones(1, 20, dtype=torch.bool)
    assert (enc(x, mask)[0][0, 0] - enc(y, mask)[0][0, 0]).abs().max() > 1e-5


def test_bad_keypoint_shape_is_one_line_error():
    with pytest.raises(RvlfError, match=r"\[B,T,77,3\]"):
        _encoder()(torch.zeros(1, 5, 75, 3), torch.ones(1, 5, dtype=torch.bool))


def test_real_holistic_keypoints_encode_finitely(fixtures_dir):
    from rvlf.data.keypoints import normalize_keypoints
    from rvlf.data.poses import read_keypoints

    kp = normalize_keypoints(read_keypoints(fixtures_dir / "holistic_97frames.pose"))
    assert kp.shape == (97, 77, 3)
    x = torch.from_numpy(np.ascontiguousarray(kp, dtype=np.float32))[None]
    z, m = _encoder().eval()(x, torch.ones(1, 97, dtype=torch.bool))
    assert z.shape == (1, 97, 32) and m.all() and torch.isfinite(z).all()
    assert z.std(dim=1).mean() > 1e-3  # frames differ: motion reaches the features
