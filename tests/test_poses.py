"""Keypoint files: real pose-format fixtures, .npz, rtmlib .pkl, and the restricted unpickler."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from rvlf.data.keypoints import PARTS, from_coco_wholebody
from rvlf.data.poses import read_keypoints
from rvlf.data.safe_pickle import safe_load
from rvlf.errors import InputFileError


def _detected(kp: np.ndarray, part: str) -> np.ndarray:
    """Per frame: is any point of `part` detected?"""
    return (kp[:, PARTS[part], 2] > 0).any(1)


@pytest.mark.parametrize("name, frames", [("holistic_97frames.pose", 97), ("holistic_130frames.pose", 130)])
def test_full_holistic_pose_files(fixtures_dir, name, frames):
    kp = read_keypoints(fixtures_dir / name)
    assert kp.shape == (frames, 77, 3) and kp.dtype == np.float32
    assert np.isfinite(kp).all()
    assert (kp[:, 0:5, 2] > 0.5).all()                      # head and shoulders always visible
    assert (kp[:, PARTS["body"], 2] > 0).all()
    assert _detected(kp, "face").all() and _detected(kp, "mouth").all()
    for hand in ("left_hand", "right_hand"):               # hands come and go
        seen = _detected(kp, hand)
        assert 0 < seen.sum() < frames
        missing = kp[~seen][:, PARTS[hand]]
        assert (missing == 0).all()
    # pixel coordinates of a 320x240 video; the face lies above the shoulders
    xy = kp[..., :2][kp[..., 2] > 0]
    assert xy[:, 0].max() <= 320 * 1.5 and xy.min() > -320
    assert kp[:, 76, 1].mean() < kp[:, 3, 1].mean()        # nose tip above the left shoulder (y down)
    assert kp[:, 3, 0].mean() > kp[:, 4, 0].mean()         # signer's left shoulder is on the image right


def test_reduced_holistic_lexicon_files(fixtures_dir):
    files = sorted((fixtures_dir / "lexicon_dsgs").glob("*.pose"))
    assert len(files) == 4
    for f in files:
        kp = read_keypoints(f)
        assert kp.ndim == 3 and 45 <= kp.shape[0] <= 73 and kp.shape[1:] == (77, 3)
        assert np.isfinite(kp).all()
        assert (kp[:, 3:9, 2] > 0).all()                   # shoulders, elbows, wrists kept
        assert (kp[:, 0:3] == 0).all() and (kp[:, 76] == 0).all()  # nose, ears, nose tip are not
        assert _detected(kp, "mouth").all() and (kp[:, 59:76, 2] > 0).all()
        assert _detected(kp, "right_hand").any()


def test_npz_in_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    coco = rng.uniform(0, 1, (6, 133, 3)).astype(np.float32)
    np.savez(tmp_path / "coco.npz", keypoints=coco)
    np.testing.assert_array_equal(read_keypoints(tmp_path / "coco.npz"), from_coco_wholebody(coco))
    own = rng.uniform(0, 1, (6, 77, 3))
    own[2, 5] = np.nan
    np.savez(tmp_path / "own.npz", keypoints=own)
    out = read_keypoints(tmp_path / "own.npz")
    assert out.dtype == np.float32 and (out[2, 5] == 0).all() and np.isclose(out[0], own[0]).all()
    np.savez(tmp_path / "bad.npz", keypoints=np.zeros((6, 50, 3)))
    with pytest.raises(InputFileError, match=r"bad\.npz.*\[6, 50, 3\]"):
        read_keypoints(tmp_path / "bad.npz")
    np.savez(tmp_path / "nokey.npz", poses=own)
    with pytest.raises(InputFileError, match="no `keypoints`.*poses"):
        read_keypoints(tmp_path / "nokey.npz")


def test_rtmlib_pkl(tmp_path):
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 1, (5, 1, 133, 2)).astype(np.float32)
    scores = rng.uniform(0, 1, (5, 1, 133)).astype(np.float32)
    path = tmp_path / "clip.pkl"
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps({"keypoints": kp, "scores": scores}, protocol=protocol))
        out = read_keypoints(path)
        assert out.shape == (5, 77, 3)
        np.testing.assert_allclose(out[:, 9, :2], kp[:, 0, 91])        # left wrist of the left hand
        np.testing.assert_allclose(out[:, 9, 2], scores[:, 0, 91])
    path.write_bytes(pickle.dumps({"keypoints": kp[:, :, :100], "scores": scores}))
    with pytest.raises(InputFileError, match="clip.pkl"):
        read_keypoints(path)


class _Payload:
    """Unpickling this would run `os.system`, creating a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"keypoints": _Payload(marker), "scores": [1]}))
    with pytest.raises(InputFileError, match=r"evil\.pkl.*refused.*(posix|os)\.system"):
        safe_load(bad)
    with pytest.raises(InputFileError, match="evil.pkl"):
        read_keypoints(bad)
    assert not marker.exists()
    # builtins are refused too (eval/exec are the classic payloads)
    bad.write_bytes(b"cbuiltins\neval\n(V__import__('os').system('touch " + str(marker).encode() + b"')\ntR.")
    with pytest.raises(InputFileError, match="builtins.eval"):
        safe_load(bad)
    assert not marker.exists()


def test_safe_load_plain_data_and_corrupt_files(tmp_path):
    data = {"info": [{"name": "a", "length": 3, "label_char": ["你", "好"], "x": (1.5, None, True)}],
            "arr": np.arange(4, dtype=np.int16), "s": np.float32(2.5)}
    p = tmp_path / "ok.pkl"
    p.write_bytes(pickle.dumps(data))
    got = safe_load(p)
    assert got["info"] == data["info"] and got["arr"].dtype == np.int16 and got["s"] == 2.5
    p.write_bytes(pickle.dumps(data)[:20])
    with pytest.raises(InputFileError, match="ok.pkl: not a readable pickle"):
        safe_load(p)
    with pytest.raises(InputFileError, match="not found"):
        safe_load(tmp_path / "missing.pkl")


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputFileError, match="unknown keypoint file type"):
        read_keypoints(tmp_path / "x.json")
    with pytest.raises(InputFileError, match="not found"):
        read_keypoints(tmp_path / "nope.pose")
    (tmp_path / "broken.pose").write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputFileError, match="broken.pose"):
        read_keypoints(tmp_path / "broken.pose")
