"""The paper's 77-point skeleton layout (Sec. 6.1, following CoSign) and its sources.

Order: body 9, left hand 21, right hand 21, mouth 8, face 18. "Left"/"right" are the
signer's own sides (COCO-WholeBody and MediaPipe Holistic agree on this). Every array
here is `[T, 77, 3]` = (x, y, confidence); a point that was not detected has confidence 0.
The exact index choices and their reasons are in docs/keypoints.md.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from rvlf.errors import InputFileError, RvlfError

NUM_POINTS = 77
PARTS: OrderedDict[str, slice] = OrderedDict(
    body=slice(0, 9),
    left_hand=slice(9, 30),
    right_hand=slice(30, 51),
    mouth=slice(51, 59),
    face=slice(59, 77),
)

# --- COCO-WholeBody-133 sources (face 23-90 is the 68-point iBUG layout, offset 23) ----------
_IBUG = 23
# nose, left ear, right ear, left/right shoulder, left/right elbow, left/right wrist
_BODY_COCO = [0, 3, 4, 5, 6, 7, 8, 9, 10]
# inner lip, iBUG 60-67: right corner, upper (3), left corner, lower (3)
_MOUTH_IBUG = list(range(60, 68))
# every second jaw point (iBUG 0..16), right brow outer/mid/inner (17, 19, 21), left brow
# inner/mid/outer (22, 24, 26), right and left outer eye corners (36, 45), nose tip (30)
_FACE_IBUG = [0, 2, 4, 6, 8, 10, 12, 14, 16, 17, 19, 21, 22, 24, 26, 36, 45, 30]
COCO_INDEX = np.array(
    _BODY_COCO
    + list(range(91, 112))
    + list(range(112, 133))
    + [_IBUG + i for i in _MOUTH_IBUG]
    + [_IBUG + i for i in _FACE_IBUG],
    dtype=np.int64,
)

# --- MediaPipe Holistic sources, by pose-format component and point name -------------------
POSE_NAMES = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
HAND_NAMES = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP",
    "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP",
    "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP", "RING_FINGER_MCP",
    "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP", "PINKY_MCP", "PINKY_PIP",
    "PINKY_DIP", "PINKY_TIP",
)
# Face-mesh vertices matching the iBUG points above (the usual 68 -> 468 correspondence).
_MOUTH_MESH = [78, 82, 13, 312, 308, 317, 14, 87]
_FACE_MESH = [162, 93, 172, 149, 152, 378, 397, 323, 389, 70, 105, 107, 336, 334, 300, 33, 263, 4]
# pose-format's reduced Holistic keeps FACEMESH_CONTOURS only (sorted vertex ids).
REDUCED_FACE_MESH = (
    0, 7, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148,
    149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 172, 173, 176, 178, 181, 185,
    191, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296,
    297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362,
    365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398,
    400, 402, 405, 409, 415, 454, 466,
)
REDUCED_POSE_NAMES = (
    "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST",
    "LEFT_HIP", "RIGHT_HIP",
)
HOLISTIC_SOURCES: list[tuple[str, str]] = (
    [("POSE_LANDMARKS", n) for n in ("NOSE", "LEFT_EAR", "RIGHT_EAR", "LEFT_SHOULDER", "RIGHT_SHOULDER",
                                     "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST")]
    + [("LEFT_HAND_LANDMARKS", n) for n in HAND_NAMES]
    + [("RIGHT_HAND_LANDMARKS", n) for n in HAND_NAMES]
    + [("FACE_LANDMARKS", str(i)) for i in _MOUTH_MESH + _FACE_MESH]
)

_FULL = [("POSE_LANDMARKS", POSE_NAMES), ("FACE_LANDMARKS", tuple(str(i) for i in range(468))),
         ("LEFT_HAND_LANDMARKS", HAND_NAMES), ("RIGHT_HAND_LANDMARKS", HAND_NAMES)]
HOLISTIC_LAYOUTS: dict[int, list[tuple[str, Sequence[str]]]] = {
    543: _FULL,
    576: _FULL + [("POSE_WORLD_LANDMARKS", POSE_NAMES)],
    178: [("POSE_LANDMARKS", REDUCED_POSE_NAMES), ("FACE_LANDMARKS", tuple(str(i) for i in REDUCED_FACE_MESH)),
          ("LEFT_HAND_LANDMARKS", HAND_NAMES), ("RIGHT_HAND_LANDMARKS", HAND_NAMES)],
}

# --- topology (local indices within each part), for the GCN adjacency ----------------------
_HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
               (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
               (18, 19), (19, 20)]
PART_EDGES: dict[str, list[tuple[int, int]]] = {
    # nose-ears-shoulders, shoulder line, both arms
    "body": [(0, 1), (0, 2), (1, 3), (2, 4), (3, 4), (3, 5), (5, 7), (4, 6), (6, 8)],
    "left_hand": list(_HAND_EDGES),
    "right_hand": list(_HAND_EDGES),
    # the inner-lip loop
    "mouth": [(i, (i + 1) % 8) for i in range(8)],
    # jaw chain, brow line (joined at the glabella), jaw top to brow outer ends,
    # brow outer ends to eye corners, eye corners and inner brows to the nose tip
    "face": [(i, i + 1) for i in range(8)] + [(9, 10), (10, 11), (11, 12), (12, 13), (13, 14)]
    + [(0, 9), (8, 14), (9, 15), (14, 16), (15, 17), (16, 17), (11, 17), (12, 17)],
}

# Left-right swap of the 77 points (negate x as well to mirror a skeleton).
MIRROR_INDEX = np.array(
    [0, 2, 1, 4, 3, 6, 5, 8, 7]
    + list(range(30, 51)) + list(range(9, 30))
    + [51 + i for i in (4, 3, 2, 1, 0, 7, 6, 5)]
    + [59 + i for i in (8, 7, 6, 5, 4, 3, 2, 1, 0, 14, 13, 12, 11, 10, 9, 16, 15, 17)],
    dtype=np.int64,
)

# Normalisation anchors (absolute indices in the 77 layout).
_BODY_NOSE, _BODY_LWRIST, _BODY_RWRIST = 0, 7, 8
_FACE_NOSE_TIP = 76


def _as_points(points: np.ndarray, n: int | None, what: str) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float32)
    if arr.ndim != 3 or (n is not None and arr.shape[1] != n) or arr.shape[2] not in (3, 4):
        want = f"[T, {n}, 3]" if n is not None else "[T, N, 3 or 4]"
        raise RvlfError(f"{what}: expected keypoints of shape {want}, got {list(arr.shape)}")
    return arr


def _xyc(arr: np.ndarray) -> np.ndarray:
    """(x, y, confidence) from `[..., 3|4]` (the last channel is confidence); NaN -> missing."""
    out = np.concatenate([arr[..., :2], arr[..., -1:]], axis=-1)
    bad = ~np.isfinite(out).all(-1)
    out[bad] = 0.0
    return out


def from_coco_wholebody(kp: np.ndarray) -> np.ndarray:
    """COCO-WholeBody-133 `[T,133,3]` (x, y, score) -> the 77-point layout `[T,77,3]`."""
    arr = _as_points(kp, 133, "from_coco_wholebody")
    return _xyc(arr[:, COCO_INDEX])


def holistic_index(components: Sequence[tuple[str, Sequence[str]]]) -> np.ndarray:
    """For each of the 77 points, its row in a Holistic array laid out as `components`, or -1.

    `components` lists (component name, point names) in storage order, as a pose-format
    header does; points a layout lacks (e.g. the nose in the reduced layout) map to -1.
    """
    where: dict[tuple[str, str], int] = {}
    offset = 0
    for comp, names in components:
        for j, name in enumerate(names):
            where.setdefault((comp, str(name)), offset + j)
        offset += len(names)
    return np.array([where.get(src, -1) for src in HOLISTIC_SOURCES], dtype=np.int64)


def select_points(points: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Gather `[T,N,C]` rows by `index` (-1 = absent, returned as missing) -> `[T,77,3]`."""
    out = _xyc(points[:, np.maximum(index, 0)])
    out[:, index < 0] = 0.0
    return out


def from_holistic(points: np.ndarray) -> np.ndarray:
    """MediaPipe Holistic `[T,N,C]` -> `[T,77,3]`.

    N = 543 (pose 33, face 468, left hand 21, right hand 21), 576 (pose-format: the same plus
    33 pose world landmarks) or 178 (pose-format's reduced layout: 8 pose points, the 128
    face-contour vertices, both hands). C = 3 (x, y, conf) or 4 (x, y, z, conf).
    """
    arr = _as_points(points, None, "from_holistic")
    n = arr.shape[1]
    if n not in HOLISTIC_LAYOUTS:
        raise RvlfError(f"from_holistic: unknown Holistic layout with {n} points (expected 543, 576 or 178)")
    return select_points(arr, holistic_index(HOLISTIC_LAYOUTS[n]))


def normalize_keypoints(kp: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Part-wise normalisation (CoSign / Uni-Sign practice) of `[T,77,3]`, float32, never NaN.

    A point counts as detected when its confidence exceeds `threshold`. The scale `s` is the
    larger side of the box around all detected body points of the sequence (all detected
    points if the body has fewer than two). Body: `2 (p - box centre) / s`. Hands: `2 (p - wrist) / s`
    with the hand's own wrist, else the body wrist. Mouth and face: `2 (p - nose) / s` with the
    face's nose tip, else the body nose, else (layouts without a nose) the mean of the detected
    face points. Coordinates are clipped to [-1, 1]; confidence is kept.
    A point that was not detected, or whose anchor was not, is zeros with confidence 0.
    """
    arr = _xyc(_as_points(kp, NUM_POINTS, "normalize_keypoints"))
    xy, conf = arr[..., :2], arr[..., 2]
    ok = conf > threshold
    out = np.zeros_like(arr)

    body = PARTS["body"]
    pts = xy[:, body][ok[:, body]] if ok[:, body].sum() >= 2 else xy[ok]
    if len(pts) == 0:
        return out
    lo, hi = pts.min(0), pts.max(0)
    scale = float((hi - lo).max())
    if not np.isfinite(scale) or scale <= 0:
        return out
    centre = (lo + hi) / 2

    face = PARTS["face"]
    n_face = ok[:, face].sum(1)
    face_centre = (xy[:, face] * ok[:, face, None]).sum(1) / np.maximum(n_face, 1)[:, None]

    def point(i: int) -> tuple[np.ndarray, np.ndarray]:
        return xy[:, i], ok[:, i]

    nose_chain = [point(_FACE_NOSE_TIP), point(_BODY_NOSE), (face_centre, n_face > 0)]
    chains = {  # per part: candidate anchors [T,2] with presence [T], first present wins
        "left_hand": [point(PARTS["left_hand"].start), point(_BODY_LWRIST)],
        "right_hand": [point(PARTS["right_hand"].start), point(_BODY_RWRIST)],
        "mouth": nose_chain,
        "face": nose_chain,
    }
    anchor = np.zeros_like(xy)                      # [T,77,2]
    has_anchor = np.zeros_like(ok)                  # [T,77]
    anchor[:, body], has_anchor[:, body] = centre, True
    for part, chain in chains.items():
        ref, present = np.zeros((len(xy), 2), np.float32), np.zeros(len(xy), dtype=bool)
        for cand, cand_ok in chain:
            take = cand_ok & ~present
            ref[take], present = cand[take], present | cand_ok
        anchor[:, PARTS[part]] = ref[:, None]
        has_anchor[:, PARTS[part]] = present[:, None]

    keep = ok & has_anchor
    out[..., :2] = np.clip(2.0 * (xy - anchor) / scale, -1.0, 1.0)
    out[..., 2] = conf
    out[~keep] = 0.0
    return out.astype(np.float32)


def to_pixels(
    kp: np.ndarray,
    width: int,
    height: int,
    *,
    path: str | None = None,
    video: str | None = None,
    threshold: float = 0.3,
) -> tuple[np.ndarray, str]:
    """Keypoints `[T,77,3]` of a file -> pixels of a `width` x `height` video, and the units found.

    Units are decided from the bulk of the confident points (confidence above `threshold`), so a
    few stray points cannot flip the decision: when more than half of them lie within
    [-0.5, 1.5] on both axes the file holds coordinates divided by the frame size (rtmlib,
    Uni-Sign, MediaPipe's own output) and is scaled to pixels ("normalised"), else it already
    holds pixels ("pixels"). Then the keypoints must be able to lie in the frame: when the central
    80% of the confident points (10th to 90th percentile) spans more than 1.5 times the frame on
    either axis, or fewer than half of them lie inside it, `InputFileError` names `path`, the
    points' span and the frame size (keypoints of another video, or of a larger copy of it).
    A file without confident points is returned unchanged ("unknown").
    """
    kp = np.asarray(kp, dtype=np.float32)
    ok = kp[..., 2] > threshold
    if not ok.any():
        return kp, "unknown"
    xy = kp[ok, :2]
    unit = ((xy >= -0.5) & (xy <= 1.5)).all(1).mean() > 0.5
    units = "normalised" if unit else "pixels"
    if unit:
        kp = kp.copy()
        kp[..., 0] *= width
        kp[..., 1] *= height
        xy = kp[ok, :2]
    lo, hi = np.percentile(xy, [10, 90], axis=0)
    span = hi - lo
    inside = ((xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)).mean()
    if span[0] > 1.5 * width or span[1] > 1.5 * height or inside < 0.5:
        where = f" of {video}" if video else ""
        raise InputFileError(
            path or "keypoints",
            f"keypoints ({units}) span {span[0]:.0f}x{span[1]:.0f} pixels (x {lo[0]:.0f}..{hi[0]:.0f}, "
            f"y {lo[1]:.0f}..{hi[1]:.0f}; {100 * inside:.0f}% inside the frame) but the frames{where} are "
            f"{width}x{height}: they cannot lie in them (keypoints of another video, or of a larger copy of it?)",
        )
    return kp, units
