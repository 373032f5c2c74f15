"""Keypoint files -> the 77-point layout `[T,77,3]` (x, y, confidence), float32.

Accepted files:
- `.pose` (pose-format): MediaPipe Holistic, full (543 / 576 points) or reduced (178); the
  points are matched by the header's component and point names. The first person is used.
- `.npz` with key `keypoints`: `[T,77,3]` (already this layout), `[T,133,3]` (COCO-WholeBody,
  x, y, score) or `[T,N,C]` Holistic with N in {543, 576, 178} (last channel = confidence).
- `.pkl` as Uni-Sign's rtmlib script (`demo/pose_extraction.py`) writes it: a dict with
  `keypoints`, a list with one `[N,133,2]` array a frame (x, y divided by the frame's width and
  height; N = people found, 0 when nobody was), and `scores`, a list of `[N,133]`; or the same
  stacked as `[T,N,133,2]` / `[T,N,133]` (also `[T,133,2]` / `[T,133]`). Optional `start`/`end`
  select frames `start .. end-1`, the signed window of a longer video, as Uni-Sign's loader does.
  Read with `safe_pickle` (no code runs). One signer per frame is kept (`pick_signer`); a frame
  with nobody gives confidence-0 points.

`load_keypoint_file` also returns the window's place in the file (`start`, `total`): a windowed
file describes frames `start .. start+T-1` of a `total`-frame video.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
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


def _size(width, height) -> tuple[int, int] | None:
    """(width, height) when both are positive whole numbers, else None (the file states no frame size)."""
    try:
        w, h = float(width), float(height)
    except (TypeError, ValueError):
        return None
    return (int(w), int(h)) if w >= 1 and h >= 1 and w.is_integer() and h.is_integer() else None


def _read_pose(path: Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    # pose-format: only for .pose files (.npz and .pkl keypoints need none of it)
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
    dims = pose.header.dimensions
    size = _size(getattr(dims, "width", None), getattr(dims, "height", None))
    return select_points(np.concatenate([data, conf[..., None]], axis=-1), index), size


def _read_npz(path: Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    size = None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "keypoints" not in z.files:
                raise InputFileError(path, f"no `keypoints` array (found: {', '.join(z.files) or 'none'})")
            kp = z["keypoints"]
            if "meta" in z.files:  # an rvlf feature file: its frames' width and height (upright pixels)
                try:
                    meta = json.loads(str(z["meta"]))
                except ValueError:
                    meta = None
                if isinstance(meta, dict):
                    size = _size(meta.get("width"), meta.get("height"))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # empty, cut, not a zip
        raise InputFileError(path, f"not a readable .npz file ({type(err).__name__}: {err})") from None
    if kp.ndim == 3 and kp.shape[1:] == (NUM_POINTS, 3):
        kp = kp.astype(np.float32)
        kp[~np.isfinite(kp).all(-1)] = 0.0
        return kp, size
    if kp.ndim == 3 and kp.shape[1:] == (133, 3):
        return from_coco_wholebody(kp), size
    if kp.ndim == 3 and kp.shape[1] in HOLISTIC_LAYOUTS and kp.shape[2] in (3, 4):
        return from_holistic(kp), size
    raise InputFileError(
        path, f"`keypoints` has shape {list(kp.shape)}; expected [T,77,3], [T,133,3] or Holistic [T,543|576|178,3|4]"
    )


def _person_box(kp: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> np.ndarray | None:
    """(x0, y0, x1, y1) around a person's confident finite points (all finite ones if none is)."""
    finite = np.isfinite(kp).all(-1)
    use = finite & (scores > threshold)
    if not use.any():
        use = finite
    if not use.any():
        return None
    pts = kp[use]
    return np.concatenate([pts.min(0), pts.max(0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_signer(people: list[np.ndarray], people_scores: list[np.ndarray]) -> list[int]:
    """Index of the signer among the N people of each frame (-1 where nobody was found).

    Rule: one person -> that person. Several -> the one whose box (around its points with score
    above 0.3) overlaps most (IoU > 0) with the box of the signer kept in the nearest earlier
    frame; when none overlaps, or no signer was kept yet, the one with the highest mean score.
    A bystander who scores higher than the signer is thus not taken once the signer was seen.
    """
    chosen, previous = [], None
    for kp, sc in zip(people, people_scores):
        n = len(kp)
        if n == 0:
            chosen.append(-1)
            continue
        boxes = [_person_box(kp[i], sc[i]) for i in range(n)]
        pick = 0
        if n > 1:
            overlaps = [(_iou(previous, b) if previous is not None and b is not None else 0.0) for b in boxes]
            if max(overlaps) > 0:
                pick = int(np.argmax(overlaps))
            else:
                pick = int(np.argmax([float(np.nan_to_num(s, nan=0.0).mean()) for s in sc]))
        chosen.append(pick)
        if boxes[pick] is not None:
            previous = boxes[pick]
    return chosen


def _pkl_frames(path: Path, keypoints, scores) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame `[N,133,2]` and `[N,133]` arrays from per-frame lists or stacked arrays."""
    def frames_of(value, name: str, point_dims: tuple[int, ...]) -> list[np.ndarray]:
        if isinstance(value, np.ndarray):
            if value.ndim == 2 + len(point_dims) and value.shape[2:] == point_dims:  # [T,N,133(,2)]
                return list(value)
            if value.ndim == 1 + len(point_dims) and value.shape[1:] == point_dims:  # [T,133(,2)]: one person
                return [v[None] for v in value]
            raise InputFileError(path, f"`{name}` has shape {list(value.shape)}; expected a list of "
                                       f"[N,{','.join(map(str, point_dims))}] arrays, one a frame")
        if not isinstance(value, (list, tuple)):
            raise InputFileError(path, f"`{name}` is a {type(value).__name__}; expected a list of arrays, one a frame")
        return list(value)

    kps = frames_of(keypoints, "keypoints", (133, 2))
    scs = frames_of(scores, "scores", (133,))
    if len(kps) != len(scs):
        raise InputFileError(path, f"`keypoints` has {len(kps)} frames but `scores` has {len(scs)}")
    out_kp, out_sc = [], []
    for t, (k, c) in enumerate(zip(kps, scs)):
        try:
            k = np.asarray(k, dtype=np.float32)
            c = np.asarray(c, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise InputFileError(path, f"frame {t}: not a numeric array ({err})") from None
        if k.ndim == 2:
            k = k[None]
        if c.ndim == 1:
            c = c[None]
        if k.ndim != 3 or k.shape[1:] != (133, 2):
            raise InputFileError(path, f"frame {t}: `keypoints` has shape {list(k.shape)}; expected [N,133,2]")
        if c.shape != k.shape[:2]:
            raise InputFileError(path, f"frame {t}: `scores` has shape {list(c.shape)}; expected "
                                       f"{list(k.shape[:2])} to match `keypoints`")
        out_kp.append(k)
        out_sc.append(c)
    return out_kp, out_sc


def _window(path: Path, obj: dict, total: int) -> tuple[int, int]:
    start, end = obj.get("start"), obj.get("end")
    if start is None and end is None:
        return 0, total
    start = 0 if start is None else start
    end = total if end is None else end
    for key, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputFileError(path, f"`{key}` must be a frame number, got {value!r}")
    if not 0 <= start < end <= total:
        raise InputFileError(path, f"window start={start}, end={end} does not fit its {total} frames "
                                   "(need 0 <= start < end <= frames)")
    return int(start), int(end)


def _read_pkl(path: Path) -> tuple[np.ndarray, int, int]:
    obj = safe_load(path)
    if not isinstance(obj, dict) or "keypoints" not in obj or "scores" not in obj:
        found = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise InputFileError(path, f"expected a dict with `keypoints` and `scores` (rtmlib / Uni-Sign), found {found}")
    kps, scs = _pkl_frames(path, obj["keypoints"], obj["scores"])
    total = len(kps)
    if total == 0:
        raise InputFileError(path, "no frames")
    start, end = _window(path, obj, total)
    signer = pick_signer(kps, scs)
    coco = np.zeros((total, 133, 3), dtype=np.float32)
    for t, i in enumerate(signer):
        if i >= 0:
            coco[t, :, :2] = kps[t][i]
            coco[t, :, 2] = scs[t][i]
    return from_coco_wholebody(coco[start:end]), start, total


@dataclass
class KeypointFile:
    """A keypoint file read as `keypoints float32 [T,77,3]` (no NaN), the frames `start ..
    start+T-1` of a `total`-frame video (a Uni-Sign `.pkl` window; else start 0, total T), and
    `size`, the (width, height) in pixels of the frames it was made from when the file says
    (a `.pose` header's dimensions, an rvlf feature file's `meta.width/height`; None otherwise)."""

    keypoints: np.ndarray
    start: int = 0
    total: int = 0
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.total = self.total or len(self.keypoints)


def load_keypoint_file(path: str | Path) -> KeypointFile:
    """Read a `.pose`, `.npz` or rtmlib/Uni-Sign `.pkl` keypoint file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "keypoint file not found")
    readers = {".pose": _read_pose, ".npz": _read_npz, ".pkl": _read_pkl}
    suffix = path.suffix.lower()
    if suffix not in readers:
        raise InputFileError(path, f"unknown keypoint file type {suffix!r} (expected {', '.join(SUFFIXES)})")
    if path.stat().st_size == 0:
        raise InputFileError(path, "empty file")
    try:
        got = readers[suffix](path)
    except RvlfError as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(path, str(err)) from None
    if suffix == ".pkl":
        (kp, start, total), size = got, None
    else:
        (kp, size), start, total = got, 0, 0
    if kp.shape[0] == 0:
        raise InputFileError(path, "no frames")
    return KeypointFile(kp.astype(np.float32, copy=False), start, total, size)


def read_keypoints(path: str | Path) -> np.ndarray:
    """Read a `.pose`, `.npz` or rtmlib `.pkl` keypoint file as `[T,77,3]` float32 (no NaN);
    a `.pkl` window (`start`/`end`) gives its T frames only."""
    return load_keypoint_file(path).keypoints
