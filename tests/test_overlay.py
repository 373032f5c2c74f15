"""The overlay (`rvlf translate --show`, the app's video; `rvlf.inference.overlay`): bones between keypoints, points
ringed in black that show on a white shirt and on a dark background, crop boxes reused from an earlier
frame (Sec. 6.2) dashed grey and labelled "reused", detected boxes solid in the part's colour.
Pixel checks on drawn frames, and on the real signer video's overlay."""

from __future__ import annotations

import numpy as np

from rvlf.data.keypoints import PART_EDGES, PARTS
from rvlf.inference.overlay import BOX_COLOURS, PART_COLOURS, REUSED_COLOUR, draw_boxes, draw_skeleton


def _body(points: dict[int, tuple[float, float]]) -> np.ndarray:
    kp = np.zeros((77, 3), np.float32)
    for i, (x, y) in points.items():
        kp[i] = (x, y, 1.0)
    return kp


def _near(pixel, colour, tol: int = 40) -> bool:
    return bool(np.abs(np.asarray(pixel, int) - np.asarray(colour, int)).max() <= tol)


def test_points_show_on_white_and_on_black():
    kp = _body({0: (100, 100)})  # the nose: a white body point
    for background in (255, 0):
        img = draw_skeleton(np.full((360, 360, 3), background, np.uint8), kp)
        assert _near(img[100, 100], PART_COLOURS["body"]), background  # the fill
        ring = [img[100, 100 + d] for d in range(2, 6)] + [img[100 + d, 100] for d in range(2, 6)]
        assert any(p.max() < 60 for p in ring), background  # the black ring: seen on white
        if background == 0:
            assert img[100, 100].min() > 200  # and the white fill on black


def test_bones_join_connected_points_only():
    edges = set(PART_EDGES["body"])
    assert (3, 5) in edges and (0, 7) not in edges and (7, 0) not in edges
    kp = _body({3: (100, 100), 5: (100, 300), 0: (250, 100), 7: (250, 300)})
    img = draw_skeleton(np.zeros((360, 360, 3), np.uint8), kp)
    assert _near(img[200, 100], PART_COLOURS["body"])  # shoulder-elbow: a bone
    assert img[200, 250].max() == 0  # nose and left wrist: no bone
    hand = np.zeros((77, 3), np.float32)
    hand[PARTS["right_hand"].start + 0] = (50, 50, 1)
    hand[PARTS["right_hand"].start + 1] = (50, 150, 1)  # wrist -> thumb CMC
    img = draw_skeleton(np.zeros((360, 360, 3), np.uint8), hand)
    assert _near(img[100, 50], PART_COLOURS["right_hand"])


def test_reused_boxes_are_dashed_grey_and_labelled():
    boxes = np.array([[40, 40, 140, 140], [200, 200, 300, 300], [0, 0, 0, 0]])
    img = draw_boxes(np.full((360, 360, 3), 255, np.uint8), boxes, found=np.array([True, False, False]))
    top_face = img[40, 45:135]
    assert all(_near(p, BOX_COLOURS[0]) for p in top_face)  # found: solid, the part's colour
    edge = img[200, 205:295]  # reused: grey dashes with gaps, never the hand's colour
    grey = [_near(p, REUSED_COLOUR, 10) for p in edge]
    assert 0.3 < np.mean(grey) < 0.8, np.mean(grey)
    assert not any(_near(p, BOX_COLOURS[1], 30) for p in img[195:305, 195:305].reshape(-1, 3))
    label = img[175:200, 200:260]  # "reused" on a black patch above the box
    assert (label.max(-1) < 30).mean() > 0.3 and any(_near(p, REUSED_COLOUR, 30) for p in label.reshape(-1, 3))
    assert img[:, 0].min() == 255 and img[0].min() == 255  # a zero box (part never found) is not drawn
    plain = draw_boxes(np.full((360, 360, 3), 255, np.uint8), boxes)  # without `found`: all solid
    assert all(_near(p, BOX_COLOURS[1]) for p in plain[200, 205:295])


def test_the_signer_videos_overlay_marks_the_reused_right_hand_box(fixtures_dir):
    from rvlf.inference.overlay import overlay_frames
    from rvlf.inference.pipeline import prepare_input

    p = prepare_input(fixtures_dir / "signer_58frames.mp4", None, max_frames=300)
    right = p.found[:, 2]
    assert right.any() and not right.all()  # the right hand is lost in some frames
    frames = list(overlay_frames(p.source, p.keypoints, p.boxes, "", p.found, p.frames))
    assert len(frames) == 58
    for t in (int(np.flatnonzero(~right)[0]), int(np.flatnonzero(right)[0])):
        x0, y0, x1, y1 = p.boxes[t, 2]
        top = frames[t][int(y0), int(x0) + 2:int(x1) - 2]
        grey = np.mean([_near(px, REUSED_COLOUR, 10) for px in top])
        orange = np.mean([_near(px, BOX_COLOURS[2], 30) for px in top])
        if right[t]:
            assert orange > 0.9 and grey == 0, (t, orange, grey)
        else:
            assert grey > 0.3 and orange < 0.1, (t, orange, grey)


LONG_EN = ("the weather tomorrow will be mostly sunny in the north while the south sees heavy rain and strong winds "
           "along the coast with temperatures between nine and fourteen degrees")
GERMAN = "morgen früh überall Schauer, im Süden größtenteils heiter bei Temperaturen um 14 Grad"  # PHOENIX-2014T style
CHINESE = "明天北方大部分地区天气晴朗，南方有大雨"  # CSL-Daily style


def _captioned(fixtures_dir, text: str) -> tuple[np.ndarray, np.ndarray]:
    """(the signer video's first frame as decoded, the same frame with `text` as the overlay's caption)."""
    from rvlf.data.video import iter_frames
    from rvlf.inference.overlay import overlay_frames

    video = fixtures_dir / "signer_58frames.mp4"
    raw = next(iter(iter_frames(video))).copy()
    drawn = next(overlay_frames(video, np.zeros((1, 77, 3), np.float32), None, text, frames=np.arange(1)))
    return raw, drawn


def _band(raw: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """The caption band: the bottom rows the caption changed (the rows above must be untouched)."""
    changed = np.flatnonzero((raw != drawn).any(axis=(1, 2)))
    assert len(changed) and changed.max() == len(raw) - 1 and (raw[:changed.min()] == drawn[:changed.min()]).all()
    return drawn[changed.min():]


def _ink_rows(band: np.ndarray) -> int:
    """Lines of text in the band: runs of rows with white text pixels."""
    rows = (band.max(axis=(1, 2)) > 200).astype(int)
    return int(((rows[1:] - rows[:-1]) == 1).sum() + rows[0])


def test_a_long_caption_wraps_inside_the_real_videos_frame(fixtures_dir):
    """The caption was one line cut at 80 characters, a fixed 0.6 font scale, and ran off the right edge
    of a narrow frame. Now it wraps to the frame's width in up to 3 lines and the band grows with it."""
    raw, drawn = _captioned(fixtures_dir, LONG_EN)
    h, w = raw.shape[:2]  # 720 x 540, portrait
    band = _band(raw, drawn)
    assert 2 <= _ink_rows(band) <= 3, _ink_rows(band)
    assert 60 < len(band) < 0.3 * h  # grown past the old 30-pixel band, still under a third of the frame
    white = band.max(axis=2) > 128
    assert white.any(axis=0)[: w // 2].any() and white.any(axis=0)[w // 2:].any()  # text across the width
    margin = max(4, round(0.045 * min(h, w)) // 3)
    assert not white[:, w - margin:].any() and not white[:, :margin].any()  # nothing at the edges: not cut off
    _, short = _captioned(fixtures_dir, "hello")  # a short caption: one line, a smaller band
    assert _ink_rows(_band(raw, short)) == 1 and len(_band(raw, short)) < len(band)


def test_captions_scale_with_the_frame():
    from rvlf.inference.overlay import caption_band

    small, large = caption_band("the cat eats", 270, 360), caption_band("the cat eats", 1080, 1440)
    assert 3.0 < len(large) / len(small) < 5.0  # four times the frame: about four times the text height


def test_a_german_caption_is_drawn_with_its_umlauts(fixtures_dir, caplog):
    """German (PHOENIX-2014T) text had no caption at all (ASCII only). Umlauts and ß are drawn: the band
    of "Süden" has more ink than that of "Suden" (the dots), and no character is reported missing."""
    from rvlf.inference.overlay import caption_band, caption_missing

    raw, drawn = _captioned(fixtures_dir, GERMAN)
    band = _band(raw, drawn)
    assert _ink_rows(band) >= 1 and (band.max(axis=2) > 200).sum() > 1000
    assert caption_missing(GERMAN) == ""
    umlaut, plain = caption_band("Süden früh über", 540, 720), caption_band("Suden fruh uber", 540, 720)
    assert umlaut.shape == plain.shape and (umlaut > 128).sum() > (plain > 128).sum()  # the dots


def test_text_no_font_draws_is_boxes_and_one_warning_naming_the_video(fixtures_dir, tmp_path, caplog):
    """Chinese (CSL-Daily) text is drawn where a system font has it (Noto Sans CJK, ...), else as boxes,
    with one warning naming the output video; never a silent empty frame. Variant: a code point that no
    font maps (U+0378, unassigned) in a Latin sentence: the Latin is drawn, the one character warned of."""
    import logging

    from rvlf.inference.overlay import MISSING_GLYPH, caption_missing, draw_overlay

    video = fixtures_dir / "signer_58frames.mp4"
    for text, expect_missing in ((CHINESE, None), ("ein Satz \u0378 hier", "\u0378")):
        raw, drawn = _captioned(fixtures_dir, text)
        band = _band(raw, drawn)
        assert (band.max(axis=2) > 200).sum() > 200  # glyphs or boxes: never nothing
        missing = caption_missing(text)
        if expect_missing is not None:
            assert missing == expect_missing
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rvlf.inference.overlay"):
            out = draw_overlay(video, np.zeros((3, 77, 3), np.float32), None, tmp_path / "o.mp4", text,
                               frames=np.arange(3))
        warned = [r.getMessage() for r in caplog.records]
        if missing:
            assert len(warned) == 1, warned
            assert warned[0].startswith(f"{out}: warning: no font here draws {len(missing)} "), warned
            assert missing[:12] in warned[0] and MISSING_GLYPH in warned[0]
        else:
            assert warned == []
