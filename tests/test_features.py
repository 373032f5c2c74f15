"""DINOv2 crop encoder (a tiny random model saved and loaded by path) and the feature files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from rvlf.data.features import DinoEncoder, load_video_features, save_tiny_dinov2, save_video_features
from rvlf.errors import InputFileError, RvlfError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_dinov2(tmp_path_factory.mktemp("dino") / "tiny-dinov2")


@pytest.fixture(scope="module")
def crops():
    return np.random.default_rng(0).integers(0, 256, size=(10, 224, 224, 3), dtype=np.uint8)


def test_encoder_loads_by_path_and_encodes(tiny, crops):
    enc = DinoEncoder(str(tiny), batch_size=4)
    assert enc.dim == 32 and enc.name == str(tiny)
    feats = enc.encode(crops)
    assert feats.shape == (10, 32) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert np.linalg.norm(feats[0] - feats[1]) > 1e-3          # different crops, different vectors
    np.testing.assert_allclose(DinoEncoder(tiny, batch_size=32).encode(crops), feats, atol=1e-5)  # batching


def test_encoder_matches_reference_preprocessing_and_cls(tiny, crops):
    """Same as the transformers image processor (ImageNet mean/std, no resize) + CLS after layer norm."""
    from transformers import Dinov2Model
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    proc = BitImageProcessorPil(do_resize=False, do_center_crop=False, image_mean=IMAGENET_DEFAULT_MEAN,
                                image_std=IMAGENET_DEFAULT_STD)
    pixels = proc(images=list(crops[:3]), return_tensors="pt")["pixel_values"]
    model = Dinov2Model.from_pretrained(tiny).eval()
    with torch.no_grad():
        hidden = model(pixel_values=pixels).last_hidden_state
    ref = hidden[:, 0]  # CLS token; last_hidden_state is already after the final layer norm
    np.testing.assert_allclose(DinoEncoder(tiny).encode(crops[:3]), ref.numpy(), atol=1e-4)


def test_encoder_errors(tiny, tmp_path):
    with pytest.raises(RvlfError, match="does not exist"):
        DinoEncoder(str(tmp_path / "nope"))
    with pytest.raises(RvlfError, match="uint8"):
        DinoEncoder(tiny).encode(np.zeros((2, 224, 224, 3), np.float32))


def test_save_load_roundtrip(tmp_path):
    kp = np.random.default_rng(1).random((5, 77, 3)).astype(np.float32)
    dino = np.random.default_rng(2).standard_normal((5, 3, 8)).astype(np.float32)
    path = save_video_features(tmp_path / "sub" / "v.npz", kp, dino, {"fps": 25.0, "source": "v.mp4"})
    got = load_video_features(path)
    np.testing.assert_array_equal(got["keypoints"], kp)
    assert got["dino"].dtype == np.float16 and got["dino"].shape == (5, 3, 8)
    np.testing.assert_allclose(got["dino"], dino, atol=1e-2)
    assert got["meta"] == {"fps": 25.0, "source": "v.mp4"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.npz"]  # no temp file left

    save_video_features(path, kp[:2], None, {})                         # replaced, without dino
    got = load_video_features(path)
    assert "dino" not in got and got["keypoints"].shape == (2, 77, 3)
    with zipfile.ZipFile(path) as z:                                     # no pickled objects inside
        assert sorted(z.namelist()) == ["keypoints.npy", "meta.npy"]


def test_save_rejects_bad_shapes(tmp_path):
    with pytest.raises(RvlfError, match="keypoints"):
        save_video_features(tmp_path / "a.npz", np.zeros((4, 76, 3)), None, {})
    with pytest.raises(RvlfError, match="dino"):
        save_video_features(tmp_path / "a.npz", np.zeros((4, 77, 3)), np.zeros((3, 3, 8)), {})
    assert not list(tmp_path.iterdir())


def test_load_bad_files_name_the_file(tmp_path):
    good = save_video_features(tmp_path / "good.npz", np.zeros((3, 77, 3)), np.zeros((3, 3, 4)), {"a": 1})
    (tmp_path / "text.npz").write_text("hello")
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[:200])
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    np.savez(tmp_path / "pickled.npz", keypoints=np.array([{"a": 1}], dtype=object), meta=np.array("{}"))
    np.savez(tmp_path / "shape.npz", keypoints=np.zeros((3, 5, 3)), meta=np.array("{}"))
    for name in ("text.npz", "truncated.npz", "other.npz", "pickled.npz", "shape.npz", "missing.npz"):
        with pytest.raises(InputFileError) as err:
            load_video_features(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name) + ":") and "\n" not in str(err.value)
