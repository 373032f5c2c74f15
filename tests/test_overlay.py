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
