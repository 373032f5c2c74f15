"""Keypoint files -> the 77-point layout `[T,77,3]` (x, y, confidence), float32.

Accepted files:
- `.pose` (pose-format): MediaPipe Holistic, full (543 / 576 points) or reduced (178); the
  points are matched by the header's component and point names. The first person is used.
- `.npz` with key `keypoints`: `[T,77,3]` (already this layout), `[T,133,3]` (COCO-WholeBody,
  x, y, score) or `[T,N,C]` Holistic with N in {543, 576, 178} (last channel = confidence).
- `.pkl` as written by rtmlib / Uni-Sign: a dict with `keypoints` `[T,1,133,2]` (x, y divided
  by the frame's width and height) and `scores` `[T,1,133]`; read with `safe_pickle`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rvlf.data.keypoints import (
    HOLISTIC_LAYOUTS,
    NUM_POINTS,
    from_coco_wholebody,
    from_holistic,
    holistic_index,
    select_points,
)
from rvlf.data.safe_pickle import safe_load
from rvlf.errors import InputFileError, RvlfError

SUFFIXES = (".pose", ".npz", ".pkl")


def _read_pose(path: Path) -> np.ndarray:
    from pose_format import Pose

    try:
        pose = Pose.read(path.read_bytes())
    except Exception as err:  # pose-format raises many kinds on a corrupt file
        raise InputFileError(path, f"not a readable .pose file ({type(err).__name__}: {err})") from None
    components = [(c.name, list(c.points)) for c in pose.header.components]
    index = holistic_index(components)
    if (index < 0).all():
        names = ", ".join(c for c, _ in components)
        raise InputFileError(path, f"no MediaPipe Holistic components in the header (found: {names})")
    data = np.ma.filled(pose.body.data[:, 0], 0.0).astype(np.float32)       # [T,N,D]
    conf = np.ma.filled(pose.body.confidence[:, 0], 0.0).astype(np.float32)  # [T,N]
    conf = np.where(np.ma.getmaskarray(pose.body.data[:, 0]).any(-1), 0.0, conf)
    return select_points(np.concatenate([data, conf[..., None]], axis=-1), index)


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "keypoints" not in z.files:
                raise InputFileError(path, f"no `keypoints` array (found: {', '.join(z.files) or 'none'})")
            kp = z["keypoints"]
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise InputFileError(path, f"not a readable .npz file ({err})") from None
    if kp.ndim == 3 and kp.shape[1:] == (NUM_POINTS, 3):
        kp = kp.astype(np.float32)
        kp[~np.isfinite(kp).all(-1)] = 0.0
        return kp
    if kp.ndim == 3 and kp.shape[1:] == (133, 3):
        return from_coco_wholebody(kp)
    if kp.ndim == 3 and kp.shape[1] in HOLISTIC_LAYOUTS and kp.shape[2] in (3, 4):
        return from_holistic(kp)
    raise InputFileError(
        path, f"`keypoints` has shape {list(kp.shape)}; expected [T,77,3], [T,133,3] or Holistic [T,543|576|178,3|4]"
    )


def _read_pkl(path: Path) -> np.ndarray:
    obj = safe_load(path)
    if not isinstance(obj, dict) or "keypoints" not in obj or "scores" not in obj:
        raise InputFileError(path, "expected a dict with `keypoints` [T,1,133,2] and `scores` [T,1,133]")
    kp = np.asarray(obj["keypoints"], dtype=np.float32)
    scores = np.asarray(obj["scores"], dtype=np.float32)
    if kp.ndim == 4:  # [T, persons, 133, 2]: the first person
        kp = kp[:, 0]
    if scores.ndim == 3:
        scores = scores[:, 0]
    if kp.ndim != 3 or kp.shape[1:] != (133, 2) or scores.shape != kp.shape[:2]:
        raise InputFileError(
            path, f"`keypoints` {list(np.shape(obj['keypoints']))} and `scores` {list(np.shape(obj['scores']))} "
            "do not match [T,1,133,2] and [T,1,133]"
        )
    return from_coco_wholebody(np.concatenate([kp, scores[..., None]], axis=-1))


def read_keypoints(path: str | Path) -> np.ndarray:
    """Read a `.pose`, `.npz` or rtmlib `.pkl` keypoint file as `[T,77,3]` float32 (no NaN)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "keypoint file not found")
    readers = {".pose": _read_pose, ".npz": _read_npz, ".pkl": _read_pkl}
    suffix = path.suffix.lower()
    if suffix not in readers:
        raise InputFileError(path, f"unknown keypoint file type {suffix!r} (expected {', '.join(SUFFIXES)})")
    try:
        kp = readers[suffix](path)
    except RvlfError as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(path, str(err)) from None
    if kp.shape[0] == 0:
        raise InputFileError(path, "no frames")
    return kp.astype(np.float32, copy=False)
