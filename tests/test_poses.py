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
    for name in ("empty.pose", "empty.pkl", "empty.npz"):  # .pose said "unpack_from requires a buffer ..."
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(InputFileError, match=f"{name}: empty file$"):
            read_keypoints(tmp_path / name)


# --- Uni-Sign's rtmlib pose lists (real_formats/unisign_pose_lists.pkl) -----------------------------------------


def _unisign(fixtures_dir) -> dict:
    return safe_load(fixtures_dir / "real_formats" / "unisign_pose_lists.pkl")


def _coco(kp, scores) -> np.ndarray:
    return from_coco_wholebody(np.concatenate([kp, scores[..., None]], -1)[None])[0]


def test_unisign_lists_window_signer_and_empty_frame(fixtures_dir):
    """start=1, end=5: frames 1-4. Frame 2 has a bystander scoring higher than the signer (the
    signer, who continues frame 1's box, is kept); frame 4 has nobody (confidence 0)."""
    from rvlf.data.poses import load_keypoint_file

    raw = _unisign(fixtures_dir)
    assert isinstance(raw["keypoints"], list) and [len(k) for k in raw["keypoints"]] == [1, 1, 2, 1, 0, 1]
    assert raw["scores"][2][1].mean() > raw["scores"][2][0].mean()      # the bystander scores higher
    kf = load_keypoint_file(fixtures_dir / "real_formats" / "unisign_pose_lists.pkl")
    kp = kf.keypoints
    assert kp.shape == (4, 77, 3) and (kf.start, kf.total) == (1, 6) and np.isfinite(kp).all()
    for w, t in enumerate((1, 2, 3)):                                     # window frame w is file frame t
        np.testing.assert_allclose(kp[w], _coco(raw["keypoints"][t][0], raw["scores"][t][0]))
    bystander = _coco(raw["keypoints"][2][1], raw["scores"][2][1])
    assert np.abs(kp[1, :, :2] - bystander[:, :2]).max() > 0.05
    assert (kp[3] == 0).all()                                            # nobody: confidence-0 points
    np.testing.assert_array_equal(read_keypoints(fixtures_dir / "real_formats" / "unisign_pose_lists.pkl"), kp)


def test_unisign_variants(tmp_path, fixtures_dir):
    """Stacked [T,N,133,2] arrays, no window, the bystander listed first, several people from the start."""
    from rvlf.data.poses import load_keypoint_file, pick_signer

    raw = _unisign(fixtures_dir)
    kps, scs = raw["keypoints"], raw["scores"]
    path = tmp_path / "v.pkl"
    # bystander listed first in frame 2: still the signer
    swapped_k = [k[::-1] if len(k) == 2 else k for k in kps]
    swapped_s = [s[::-1] if len(s) == 2 else s for s in scs]
    path.write_bytes(pickle.dumps({"keypoints": swapped_k, "scores": swapped_s}))
    kf = load_keypoint_file(path)
    assert kf.keypoints.shape == (6, 77, 3) and (kf.start, kf.total) == (0, 6)
    np.testing.assert_allclose(kf.keypoints[2], _coco(kps[2][0], scs[2][0]))
    # two people and no earlier signer: the highest mean score
    assert pick_signer([kps[2], kps[3]], [scs[2], scs[3]]) == [1, 0]
    assert pick_signer([kps[0], kps[2]], [scs[0], scs[2]]) == [0, 0]
    # the stacked layout (one person a frame, as Uni-Sign's other scripts write)
    stacked = np.stack([k[:1] for t, k in enumerate(kps) if t != 4])     # [5,1,133,2]
    stacked_s = np.stack([s[:1] for t, s in enumerate(scs) if t != 4])
    path.write_bytes(pickle.dumps({"keypoints": stacked, "scores": stacked_s, "start": 0, "end": 3}))
    kf = load_keypoint_file(path)
    assert kf.keypoints.shape == (3, 77, 3) and kf.total == 5
    np.testing.assert_allclose(kf.keypoints[2], _coco(kps[2][0], scs[2][0]))


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d["keypoints"].__setitem__(3, np.zeros((1, 133, 3), np.float32)), r"frame 3: `keypoints` has shape \[1, 133, 3\]"),
    (lambda d: d["scores"].__setitem__(2, d["scores"][2][:1]), r"frame 2: `scores` has shape \[1, 133\]; expected \[2, 133\]"),
    (lambda d: d["scores"].pop(), r"`keypoints` has 6 frames but `scores` has 5"),
    (lambda d: d.update(start=4, end=9), r"window start=4, end=9 does not fit its 6 frames"),
    (lambda d: d.update(start=3, end=3), r"window start=3, end=3"),
    (lambda d: d.update(start="1"), r"`start` must be a frame number"),
    (lambda d: d.pop("scores"), r"expected a dict with `keypoints` and `scores`"),
    (lambda d: d.update(keypoints=np.zeros((6, 2, 133))), r"`keypoints` has shape \[6, 2, 133\]"),
])
def test_unisign_errors_name_the_pkl_and_frame(tmp_path, fixtures_dir, edit, problem):
    raw = _unisign(fixtures_dir)
    edit(raw)
    path = tmp_path / "bad_pose.pkl"
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(InputFileError, match=problem) as err:
        read_keypoints(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_fully_masked_pose_file_has_no_signer(tmp_path, fixtures_dir):
    """A real .pose file with every point masked (nothing tracked) reads as confidence 0: no signer."""
    from pose_format import Pose

    from rvlf.data.crops import NoSignerError, body_share, check_signer

    pose = Pose.read((fixtures_dir / "holistic_97frames.pose").read_bytes())
    pose.body.data.mask = np.ones(pose.body.data.shape, dtype=bool)   # pose-format stores a mask as confidence 0
    pose.body.confidence[:] = 0
    path = tmp_path / "masked.pose"
    with path.open("wb") as f:
        pose.write(f)
    assert np.ma.getmaskarray(Pose.read(path.read_bytes()).body.data).all()
    kp = read_keypoints(path)
    assert kp.shape == (97, 77, 3) and (kp[..., 2] == 0).all()
    assert body_share(kp) == 0.0 and body_share(read_keypoints(fixtures_dir / "holistic_97frames.pose")) == 1.0
    with pytest.raises(NoSignerError, match=r"masked\.pose: no signer found: .* none of its 97 frames"):
        check_signer(kp, path)
