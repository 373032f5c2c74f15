"""Drawing keypoints and crop boxes over a frame (`rvlf translate --show`, the `rvlf app` overlay),
and whole videos with the overlay (`overlay_frames`, `draw_overlay`).

Per frame: the skeleton's bones (`rvlf.data.keypoints.PART_EDGES`) as lines in the part's colour
over a dark outline, each confident point (confidence > 0.3) as a filled dot in the part's colour
ringed in black (so it shows on a white shirt and on a dark background alike), and the face /
left hand / right hand crop boxes: solid in the part's colour where the part was found in that
frame, dashed grey and labelled "reused" where the box is the Sec. 6.2 fallback (the part was not
found, so the box of an earlier frame is reused for the crop). The translation is a caption on a
black band at the bottom (`caption_band`): sized by the frame, wrapped to its width, in any script a
font here has (DejaVu Sans from Matplotlib, else a system font); `draw_overlay` warns once, naming
the video, of characters no font has (drawn as boxes).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from rvlf.data.keypoints import PART_EDGES, PARTS
from rvlf.data.video import iter_frames, video_fps, write_browser_video
from rvlf.errors import InputFileError, RvlfError

log = logging.getLogger("rvlf.inference.overlay")

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


# The caption: white text on a black band at the bottom of the frame, wrapped to the frame's width.
CAPTION_SIZE = 0.045   # font size (pixels) per pixel of the frame's short side (24 px at 540)
CAPTION_MIN_SIZE = 12  # pixels; a caption too long for CAPTION_LINES lines shrinks down to this
CAPTION_LINES = 3      # at most; beyond, the last line ends in an ellipsis
MISSING_GLYPH = "\u25a1"  # WHITE SQUARE, drawn for a character no font here has (the usual "tofu" box)


@functools.lru_cache(maxsize=1)
def _primary_font() -> str | None:
    """DejaVu Sans as Matplotlib (a dependency) ships it: Latin with every diacritic (German umlauts, ß),
    Greek, Cyrillic, ... (about 5,900 characters); None if that file is missing."""
    import matplotlib  # only its data folder: no pyplot, no font cache

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return str(path) if path.is_file() else None


@functools.lru_cache(maxsize=None)
def _charmap(path: str) -> frozenset[int]:
    """The code points font file `path` has glyphs for (its cmap, through Matplotlib's FreeType binding;
    empty for a file FreeType cannot read)."""
    from matplotlib.ft2font import FT2Font  # Matplotlib's FreeType binding: only when drawing a caption

    try:
        return frozenset(FT2Font(path).get_charmap())
    except Exception:  # noqa: BLE001 - a broken or unsupported font file is no candidate, not an error
        return frozenset()


@functools.lru_cache(maxsize=1)
def _system_fonts() -> tuple[str, ...]:
    """The system's TrueType/OpenType font files (Matplotlib's `findSystemFonts`: fontconfig where it is,
    else the usual folders), sorted; looked up only for a character DejaVu Sans lacks (e.g. Chinese:
    Noto Sans CJK, WenQuanYi, ... where installed). Nothing is downloaded."""
    from matplotlib import font_manager  # loads Matplotlib's font list: only when DejaVu Sans is not enough

    return tuple(sorted(f for f in font_manager.findSystemFonts() if f.lower().endswith((".ttf", ".otf", ".ttc"))))


@functools.lru_cache(maxsize=4096)
def _font_for(ch: str) -> str | None:
    """The font file that draws character `ch`: DejaVu Sans, else the first system font that has it;
    None when no font here has it."""
    primary = _primary_font()
    if primary and ord(ch) in _charmap(primary):
        return primary
    return next((f for f in _system_fonts() if ord(ch) in _charmap(f)), None)


def caption_missing(text: str) -> str:
    """The characters of `text` (whitespace aside) that no font here can draw, each once, in order."""
    return "".join(dict.fromkeys(ch for ch in text if not ch.isspace() and _font_for(ch) is None))


@functools.lru_cache(maxsize=64)
def _font(path: str | None, size: int):
    from PIL import ImageFont  # Pillow: only when drawing a caption

    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _runs(line: str) -> list[tuple[str, str | None]]:
    """`line` as runs of (text, font file) of one font each; a character no font has becomes `MISSING_GLYPH`."""
    runs: list[tuple[str, str | None]] = []
    for ch in line:
        path = _font_for(ch)
        if path is None:
            ch, path = MISSING_GLYPH, _font_for(MISSING_GLYPH)
            if path is None:
                ch, path = "?", _primary_font()
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + ch, path)
        else:
            runs.append((ch, path))
    return runs


def _width(line: str, size: int) -> float:
    return sum(_font(path, size).getlength(run) for run, path in _runs(line))


def _wrap(text: str, size: int, width: int) -> list[str]:
    """`text` in lines of at most `width` pixels at font size `size`: broken at spaces, a word wider than a
    line (or a text without spaces, Chinese) broken between characters."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _width(candidate, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
            line = ""
        for ch in word:  # the word alone: as much of it as fits on each line
            if line and _width(line + ch, size) > width:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines


@functools.lru_cache(maxsize=8)
def caption_band(text: str, width: int, height: int) -> np.ndarray:
    """The caption of a `width` x `height` frame: `uint8 [h, width]`, white text (255, anti-aliased) on black
    (0), to lay over the bottom `h` rows. The font size is `CAPTION_SIZE` of the frame's short side (at
    least `CAPTION_MIN_SIZE`); the text wraps to the frame's width less a margin on each side, in up to
    `CAPTION_LINES` lines, shrinking the font (down to `CAPTION_MIN_SIZE`) before the last line is cut
    with an ellipsis. Characters are drawn with DejaVu Sans, else a system font that has them, else as
    `MISSING_GLYPH` (`caption_missing` names them). An empty text gives `[0, width]`."""
    from PIL import Image, ImageDraw  # Pillow: only when drawing a caption

    text = " ".join(text.split())
    if not text:
        return np.zeros((0, width), np.uint8)
    base = max(CAPTION_MIN_SIZE, round(CAPTION_SIZE * min(width, height)))
    pad = max(4, base // 3)
    inner = max(1, width - 2 * pad)
    size = base
    lines = _wrap(text, size, inner)
    while len(lines) > CAPTION_LINES and size > CAPTION_MIN_SIZE:
        size = max(CAPTION_MIN_SIZE, round(size * 0.85))
        lines = _wrap(text, size, inner)
    if len(lines) > CAPTION_LINES:
        last = lines[CAPTION_LINES - 1] + "\u2026"
        while len(last) > 1 and _width(last, size) > inner:
            last = last[:-2].rstrip() + "\u2026"
        lines = lines[:CAPTION_LINES - 1] + [last]
    ascent, descent = _font(_font_for("A") or _primary_font(), size).getmetrics()
    line_h = round((ascent + descent) * 1.1)
    band = Image.new("L", (width, min(height, len(lines) * line_h + 2 * pad - (line_h - ascent - descent))), 0)
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        x, y = float(pad), pad + i * line_h + ascent
        for run, path in _runs(line):
            font = _font(path, size)
            draw.text((x, y), run, fill=255, font=font, anchor="ls")
            x += font.getlength(run)
    out = np.array(band)
    out.setflags(write=False)  # cached: shared by every frame of a video
    return out


def draw_caption(img: np.ndarray, text: str) -> np.ndarray:
    """`text` as white lines on a black band at the bottom of RGB `img` `uint8 [H,W,3]`, in place
    (`caption_band`: wrapped to the frame's width, sized by the frame, any script a font here has).
    Returns `img`."""
    band = caption_band(" ".join(text.split()), img.shape[1], img.shape[0])
    if len(band):
        img[img.shape[0] - len(band):] = band[:, :, None]
    return img


def overlay_frames(source: Path, keypoints: np.ndarray, boxes: np.ndarray | None, text: str = "",
                   found: np.ndarray | None = None, frames: np.ndarray | None = None):
    """RGB frames of `source` with the keypoints (skeleton lines, outlined points), the crop boxes
    (reused ones, where `found [T,3]` is False, dashed grey and labelled "reused"; see
    above) and `text` (the caption: `draw_caption`, wrapped on a black band at the bottom) drawn over each frame.
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
    then renamed. `found` and `frames` as in `overlay_frames` (a `Prepared`'s). Characters of `text` that no
    font here has are drawn as `MISSING_GLYPH` and named in one warning (logger `rvlf.inference.overlay`)."""
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
    missing = caption_missing(text)
    if missing:  # once per video, not per frame: the caption shows them as boxes
        log.warning("%s: warning: no font here draws %d character%s of the caption (%s): drawn as %s; install a "
                    "font that has them (e.g. Noto Sans CJK for Chinese: fonts-noto-cjk)", final, len(missing),
                    "s" if len(missing) != 1 else "", missing[:12] + ("..." if len(missing) > 12 else ""),
                    MISSING_GLYPH)
    return final
