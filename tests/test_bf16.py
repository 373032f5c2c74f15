"""DINOv2 in bfloat16 for inference on CPUs with native bf16 (`rvlf.data.features.inference_dtype`).

The measured speed-up and the demo's translations are in benchmarks/ (section 10); here: the choice, its
override, and that bf16 features of real crops stay within cosine 0.999 of float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvlf.data.features import DinoEncoder, inference_dtype, save_tiny_dinov2
from rvlf.errors import RvlfError


def _native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_inference_dtype_is_bf16_only_on_a_cpu_with_native_bf16_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("RVLF_DINO_DTYPE", raising=False)
    assert inference_dtype("cpu") == (torch.bfloat16 if _native_bf16() else torch.float32)
    assert inference_dtype("cuda") == torch.float32 and inference_dtype("cuda:1") == torch.float32
    monkeypatch.setenv("RVLF_DINO_DTYPE", "float32")
    assert inference_dtype("cpu") == torch.float32
    monkeypatch.setenv("RVLF_DINO_DTYPE", "bf16")
    assert inference_dtype("cpu") == torch.bfloat16
    monkeypatch.setenv("RVLF_DINO_DTYPE", "half")
    with pytest.raises(RvlfError, match="RVLF_DINO_DTYPE must be float32, bfloat16 or auto, got 'half'"):
        inference_dtype("cpu")


def test_bf16_features_of_real_crops_stay_within_cosine_0_999(fixtures_dir, tmp_path):
    from rvlf.data.crops import crop_frame
    from rvlf.data.video import iter_frames

    frames = [f for t, f in enumerate(iter_frames(fixtures_dir / "signer_58frames.mp4")) if t % 20 == 0]
    h, w = frames[0].shape[:2]
    boxes = np.array([[w // 3, 0, 2 * w // 3, h // 3], [0, h // 2, w // 3, 5 * h // 6],  # face, hands regions
                      [2 * w // 3, h // 2, w, 5 * h // 6]])
    crops = np.concatenate([crop_frame(f, boxes) for f in frames])  # uint8 [N,224,224,3]
    # a real DINOv2 depth and head layout at a small width (random weights), and the demo's tiny one
    for kw in (dict(hidden_size=64, num_hidden_layers=12, num_attention_heads=4, intermediate_size=256),
               dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)):
        path = save_tiny_dinov2(tmp_path / f"dino{kw['num_hidden_layers']}", **kw)
        a = DinoEncoder(str(path), batch_size=8).encode(crops)
        b = DinoEncoder(str(path), batch_size=8, dtype=torch.bfloat16).encode(crops)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(crops), kw["hidden_size"])
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() >= 0.999, (kw, cos.min())
        assert not np.array_equal(a, b)  # it did compute in bf16
