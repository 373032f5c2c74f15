"""Drawing keypoints and crop boxes over a frame (`rvlf translate --show`, the `rvlf app` overlay),
and whole videos with the overlay (`overlay_frames`, `draw_overlay`).

Per frame: the skeleton's bones (`rvlf.data.keypoints.PART_EDGES`) as lines in the part's colour
over a dark outline, each confident point (confidence > 0.3) as a filled dot in the part's colour
ringed in black (so it shows on a white shirt and on a dark background alike), and the face /
left hand / right hand crop boxes: solid in the part's colour where the part was found in that
frame, dashed grey and labelled "reused" where the box is the Sec. 6.2 fallback (the part was not
found, so the box of an earlier frame is reused for the crop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rvlf.data.keypoints import PART_EDGES, PARTS
from rvlf.data.video import iter_frames, video_fps, write_browser_video
from rvlf.errors import InputFileError, RvlfError

PART_COLOURS = {"body": (255, 255, 255), "left_hand": (0, 200, 255), "right_hand": (255, 120, 0),
                "mouth": (255, 0, 160), "face": (0, 255, 120)}
BOX_COLOURS = ((0, 255, 120), (0, 200, 255), (255, 120, 0))  # face, left hand, right hand (RGB)
REUSED_COLOUR = (150, 150, 150)
OUTLINE = (0, 0, 0)
MIN_CONFIDENCE = 0.3


def _scale(img: np.ndarray) -> float:
    """Line and dot sizes grow with the frame (1 at 360 pixels on the short side)."""
    return max(1.0, min(img.shape[:2]) / 360)


def draw_skeleton(img: np.ndarray, keypoints: np.ndarray, offset=(0.0, 0.0), zoom: float = 1.0) -> np.ndarray:
    """Draw one frame's keypoints `[77,3]` (pixels; drawn at `xy * zoom + offset`) on RGB `img`
    `uint8 [H,W,3]` in place: bones, then outlined dots. Returns `img`."""
    import cv2  # OpenCV: only when drawing (`rvlf translate` without --show never loads it)

    s = _scale(img)
    thick, radius = max(1, round(1.5 * s)), max(2, round(2.5 * s))
    kp = np.asarray(keypoints, dtype=np.float32)
    ok = np.isfinite(kp).all(1) & (kp[:, 2] > MIN_CONFIDENCE)
    xy = np.rint(np.nan_to_num(kp[:, :2]) * zoom + np.asarray(offset, np.float32)).astype(np.int64)
    for name, sl in PARTS.items():
        colour = PART_COLOURS[name]
        for a, b in PART_EDGES[name]:
            i, j = sl.start + a, sl.start + b
            if ok[i] and ok[j]:
                p, q = tuple(map(int, xy[i])), tuple(map(int, xy[j]))
                cv2.line(img, p, q, OUTLINE, thick + 2, cv2.LINE_AA)
                cv2.line(img, p, q, colour, thick, cv2.LINE_AA)
    for name, sl in PARTS.items():
        colour = PART_COLOURS[name]
        for i in range(sl.start, sl.stop):
            if ok[i]:
                centre = tuple(map(int, xy[i]))
                cv2.circle(img, centre, radius + 1, OUTLINE, -1, cv2.LINE_AA)
                cv2.circle(img, centre, radius - 1 if radius > 2 else radius, colour, -1, cv2.LINE_AA)
    return img


def _dashed_rectangle(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], colour, thick: int,
                      dash: int) -> None:
    import cv2  # OpenCV: only when drawing (`rvlf translate` without --show never loads it)

    (x0, y0), (x1, y1) = p0, p1
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            f0, f1 = start / max(length, 1), end / max(length, 1)
            u = (round(a[0] + (b[0] - a[0]) * f0), round(a[1] + (b[1] - a[1]) * f0))
            v = (round(a[0] + (b[0] - a[0]) * f1), round(a[1] + (b[1] - a[1]) * f1))
            cv2.line(img, u, v, OUTLINE, thick + 2)  # a dark edge: grey dashes show on grey walls too
            cv2.line(img, u, v, colour, thick)


def draw_boxes(img: np.ndarray, boxes: np.ndarray, found: np.ndarray | None = None) -> np.ndarray:
    """Draw one frame's crop boxes `[3,4]` (x0, y0, x1, y1; face, left hand, right hand) on `img` in
    place: a box whose part was found in this frame (`found[p]`; all when `found` is None) solid in
    its colour, a reused one (Sec. 6.2) dashed grey with the label "reused". Zero boxes (a part
    never found) are not drawn. Returns `img`."""
    import cv2  # OpenCV: only when drawing (`rvlf translate` without --show never loads it)

    s = _scale(img)
    thick = max(1, round(2 * s))
    for p, ((x0, y0, x1, y1), colour) in enumerate(zip(np.asarray(boxes, dtype=np.int64), BOX_COLOURS)):
        if x1 <= x0 or y1 <= y0:
            continue
        p0, p1 = (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1)
        if found is None or bool(found[p]):
            cv2.rectangle(img, p0, p1, colour, thick)
            continue
        _dashed_rectangle(img, p0, p1, REUSED_COLOUR, thick, dash=max(4, round(6 * s)))
        scale = 0.45 * s
        (w, h), base = cv2.getTextSize("reused", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = int(y0) - 4 if int(y0) - 4 - h >= 0 else int(y0) + h + 4
        tx = min(max(int(x0), 0), max(img.shape[1] - w - 2, 0))
        cv2.rectangle(img, (tx - 1, ty - h - 2), (tx + w + 1, ty + base), OUTLINE, -1)
        cv2.putText(img, "reused", (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, REUSED_COLOUR, 1, cv2.LINE_AA)
    return img


def draw_caption(img: np.ndarray, text: str) -> np.ndarray:
    """`text` (ASCII only: OpenCV's fonts have no other glyphs; other text is left off) on a dark band
    at the bottom of `img`, in place."""
    import cv2  # OpenCV: only when drawing (`rvlf translate` without --show never loads it)

    caption = " ".join(text.split())[:80]
    if caption and caption.isascii():
        h = img.shape[0]
        cv2.rectangle(img, (0, h - 30), (img.shape[1], h), (0, 0, 0), -1)
        cv2.putText(img, caption, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def overlay_frames(source: Path, keypoints: np.ndarray, boxes: np.ndarray | None, text: str = "",
                   found: np.ndarray | None = None, frames: np.ndarray | None = None):
    """RGB frames of `source` with the keypoints (skeleton lines, outlined points), the crop boxes
    (reused ones, where `found [T,3]` is False, dashed grey and labelled "reused"; see
    above) and `text` (on a dark band at the bottom; ASCII only) drawn over each frame.
    `frames`: the input frame of each keypoint row (`Prepared.frames`); only those frames are drawn."""
    row = None if frames is None else {int(f): i for i, f in enumerate(frames)}
    last = None if frames is None or not len(frames) else int(frames[-1])
    for t, frame in enumerate(iter_frames(source)):
        i = t if row is None else row.get(t)
        if row is not None and i is None:
            if last is not None and t > last:
                break
            continue
        img = np.ascontiguousarray(frame)
        if i < len(keypoints):
            draw_skeleton(img, keypoints[i])
            if boxes is not None:
                draw_boxes(img, boxes[i], None if found is None else found[i])
        draw_caption(img, text)
        yield img


def draw_overlay(source: Path, keypoints: np.ndarray, boxes: np.ndarray | None, out: str | Path, text: str = "",
                 found: np.ndarray | None = None, frames: np.ndarray | None = None) -> Path:
    """Write `source` with the keypoints, crop boxes and the translation drawn over each frame as a
    video every browser plays (`write_browser_video`: H.264 mp4, else VP9 WebM; the returned path's
    suffix says which), at the source's frame rate (25 for images). Written under a temporary name,
    then renamed. `found` and `frames` as in `overlay_frames` (a `Prepared`'s)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = video_fps(source) or 25.0
    frames = overlay_frames(source, keypoints, boxes, text, found, frames)
    try:
        written = write_browser_video(frames, fps, out.with_name(f".{out.stem}.tmp"))
    except RvlfError:
        raise InputFileError(source, "no frames to draw on") from None
    final = out.with_suffix(written.suffix)
    written.replace(final)
    return final
