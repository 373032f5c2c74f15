"""Face and hand crop boxes from keypoints, with the paper's fallback (Sec. 6.2), and 224x224 crops.

Boxes are computed from the 77-point layout in pixel coordinates, one per part in the order
`CROP_PARTS` (face, left hand, right hand; "left" is the signer's own left). Only points that are
confident and inside the frame count: a part is found in a frame when at least half of its points
are, and its box is the tight box of those points, made square around its centre, enlarged by
`margin` of its side on each side (side x (1 + 2 margin)), at least `min_size` pixels, then
shifted inside the frame and clipped to it (clipping only bites when the box is larger than the
frame). A stray point far outside the frame therefore never stretches or moves a box.

Fallback (Sec. 6.2): a frame where a part is not found reuses the box of the most recent frame
where it was; frames before the first detection use the first detection; a part never found
keeps zero boxes (and `found` is False everywhere, which `missing_parts` reports).
"""

from __future__ import annotations

import numpy as np

from rvlf.data.keypoints import NUM_POINTS, PARTS
from rvlf.errors import InputFileError, RvlfError

CROP_PARTS: dict[str, slice] = {
    "face": slice(PARTS["mouth"].start, PARTS["face"].stop),  # mouth + face points
    "left_hand": PARTS["left_hand"],
    "right_hand": PARTS["right_hand"],
}


def not_detected(n: int) -> str:
    """A part's absence from all `n` frames in words: "is detected in none of its N frames", or for a
    still image "is not detected in its only frame"."""
    return "is not detected in its only frame" if n == 1 else f"is detected in none of its {n} frames"


def _usable(keypoints: np.ndarray, threshold: float, frame_size: tuple[int, int] | None) -> np.ndarray:
    """`bool [T,77]`: confidence above `threshold` (and, given `frame_size` (W, H), inside the frame)."""
    kp = np.asarray(keypoints)
    ok = kp[..., 2] > threshold
    if frame_size is not None:
        W, H = frame_size
        with np.errstate(invalid="ignore"):
            ok &= (kp[..., 0] >= 0) & (kp[..., 0] < W) & (kp[..., 1] >= 0) & (kp[..., 1] < H)
    return ok


def part_found(keypoints: np.ndarray, threshold: float = 0.3, min_fraction: float = 0.5,
               frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """`bool [T,4]` for body, face, left hand, right hand: at least `min_fraction` of the part's
    points have confidence above `threshold` (MediaPipe gives 1 or 0; pose estimators give scores)
    and, when `frame_size` (W, H) is given, lie inside the frame."""
    ok = _usable(keypoints, threshold, frame_size)
    groups = [PARTS["body"], *CROP_PARTS.values()]
    return np.stack([ok[:, g].mean(1) >= min_fraction for g in groups], axis=1)


def body_share(keypoints: np.ndarray, frame_size: tuple[int, int] | None = None) -> float:
    """Share of frames in which the signer's body is found (`part_found`), 0.0 for no frames."""
    kp = np.asarray(keypoints)
    return float(part_found(kp, frame_size=frame_size)[:, 0].mean()) if len(kp) else 0.0


class NoSignerError(InputFileError):
    """The body is found in no frame: nothing to translate (all-NaN, all-zero or fully masked
    keypoints, a clip with nobody in it). `rvlf extract` fails on it unless `--allow-empty`."""


def check_signer(keypoints: np.ndarray, path, frame_size: tuple[int, int] | None = None) -> float:
    """`body_share`, raising `NoSignerError` naming `path` when it is 0."""
    share = body_share(keypoints, frame_size)
    if share == 0.0:
        raise NoSignerError(path, f"no signer found: the body {not_detected(len(keypoints))}")
    return share


def crop_boxes(
    keypoints: np.ndarray,
    frame_size: tuple[int, int],
    margin: float = 0.25,
    threshold: float = 0.3,
    min_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes `int64 [T,3,4]` (x0, y0, x1, y1; x1/y1 exclusive) and detections `bool [T,3]`.

    `keypoints` is `[T,77,3]` in pixels, `frame_size` is (W, H). A part counts as found in a
    frame when `part_found(..., frame_size=frame_size)` says so (enough confident points inside
    the frame); its box is built from those points only. `found` marks the frames whose own box
    is used; the others reuse one (Sec. 6.2).
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_POINTS, 3):
        raise RvlfError(f"crop_boxes: expected keypoints [T,{NUM_POINTS},3], got {list(kp.shape)}")
    if margin < 0:
        raise RvlfError(f"crop_boxes: margin must be >= 0, got {margin}")
    W, H = int(frame_size[0]), int(frame_size[1])
    T = kp.shape[0]
    found = part_found(kp, threshold, frame_size=(W, H))[:, 1:]
    usable = _usable(kp, threshold, (W, H))
    boxes = np.zeros((T, len(CROP_PARTS), 4), dtype=np.int64)
    frames = np.arange(T)
    for p, sl in enumerate(CROP_PARTS.values()):
        xy, ok = kp[:, sl, :2], usable[:, sl]
        lo = np.where(ok[..., None], xy, np.inf).min(1)      # [T,2]; +-inf where nothing is found
        hi = np.where(ok[..., None], xy, -np.inf).max(1)
        with np.errstate(invalid="ignore"):
            centre = (lo + hi) / 2
        if not found[:, p].any():
            continue
        c, extent = centre[found[:, p]], (hi - lo)[found[:, p]]
        side = np.ceil(np.maximum(extent.max(1) * (1 + 2 * margin), min_size)).astype(np.int64)
        raw = np.empty((len(c), 4), dtype=np.int64)
        for axis, limit in ((0, W), (1, H)):
            start = np.rint(np.clip(c[:, axis] - side / 2, 0, np.maximum(limit - side, 0))).astype(np.int64)
            raw[:, axis] = start
            raw[:, axis + 2] = np.minimum(start + side, limit)
        # most recent found frame (Sec. 6.2); before the first detection, the first one
        last = np.maximum.accumulate(np.where(found[:, p], frames, -1))
        last[last < 0] = np.argmax(found[:, p])
        rank = np.cumsum(found[:, p]) - 1                     # row of each found frame in `raw`
        boxes[:, p] = raw[rank[last]]
    return boxes, found


def missing_parts(found: np.ndarray) -> list[str]:
    """Names of the crop parts never found in a video (their boxes and features are zeros)."""
    return [name for name, seen in zip(CROP_PARTS, np.asarray(found).any(0)) if not seen]


def crop_frame(frame: np.ndarray, boxes: np.ndarray, size: int = 224) -> np.ndarray:
    """Crop `uint8 [H,W,3]` to each box in `[3,4]` and resize -> `uint8 [3,size,size,3]`.

    A zero-area box gives a black crop. A box clipped by the frame edge is zero-padded back to
    a square before resizing, so crops are never stretched.
    """
    import cv2  # OpenCV deferred on purpose: box and body-share helpers serve `rvlf data check` without it

    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.int64)):
        patch = frame[y0:y1, x0:x1]
        h, w = patch.shape[:2]
        if h == 0 or w == 0:
            continue
        if h != w:
            d = abs(h - w)
            pad = (0, 0, d // 2, d - d // 2) if h > w else (d // 2, d - d // 2, 0, 0)
            patch = cv2.copyMakeBorder(patch, *pad, cv2.BORDER_CONSTANT, value=0)
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(patch, (size, size), interpolation=interp)
    return out
