"""Face/hand crop boxes with the Sec. 6.2 fallback, on real Holistic keypoints, and 224x224 crops."""

from __future__ import annotations

import numpy as np
import pytest

from rvlf.data.crops import CROP_PARTS, crop_boxes, crop_frame, missing_parts, part_found
from rvlf.data.keypoints import PARTS
from rvlf.data.poses import read_keypoints

FRAME = (320, 240)  # holistic_97frames.pose is 320x240


@pytest.fixture(scope="module")
def kp(fixtures_dir):
    return read_keypoints(fixtures_dir / "holistic_97frames.pose")


def _inside(points, box):
    x0, y0, x1, y1 = box
    return (points[:, 0] >= x0).all() and (points[:, 0] <= x1).all() and (points[:, 1] >= y0).all() and (
        points[:, 1] <= y1).all()


def test_boxes_square_contain_points_and_stay_in_frame(kp):
    boxes, found = crop_boxes(kp, FRAME, margin=0.25)
    assert boxes.shape == (97, 3, 4) and found.shape == (97, 3) and found[:, 0].all()
    for t, p in zip(*np.nonzero(found)):
        part = kp[t, list(CROP_PARTS.values())[p]]
        inside = (part[:, 0] >= 0) & (part[:, 0] < FRAME[0]) & (part[:, 1] >= 0) & (part[:, 1] < FRAME[1])
        pts = part[(part[:, 2] > 0.3) & inside, :2]                    # boxes come from points in the frame
        x0, y0, x1, y1 = boxes[t, p]
        assert 0 <= x0 < x1 <= FRAME[0] and 0 <= y0 < y1 <= FRAME[1]
        side = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))
        if x1 - x0 < FRAME[1]:  # not larger than the frame: square, 1.5x the extent
            assert (x1 - x0) == (y1 - y0)
            assert (x1 - x0) == pytest.approx(max(1.5 * side, 16), abs=2)
        assert _inside(pts, boxes[t, p])


def test_margin_grows_boxes(kp):
    small, _ = crop_boxes(kp, FRAME, margin=0.0)
    big, _ = crop_boxes(kp, FRAME, margin=0.5)
    width = lambda b: b[..., 2] - b[..., 0]  # noqa: E731
    assert (width(big[30]) > width(small[30])).all()


def test_fallback_on_real_detections(kp):
    """The real file loses the left hand at frame 19 and both hands before 17 and after ~60."""
    boxes, found = crop_boxes(kp, FRAME)
    lh, rh = found[:, 1], found[:, 2]
    assert not lh[:17].any() and lh[17] and lh[18] and not lh[19] and lh[20]
    np.testing.assert_array_equal(boxes[19, 1], boxes[18, 1])           # most recent good frame
    np.testing.assert_array_equal(boxes[:17, 1], np.broadcast_to(boxes[17, 1], (17, 4)))  # before: the next
    last_r = np.flatnonzero(rh)[-1]
    np.testing.assert_array_equal(boxes[last_r:, 2], np.broadcast_to(boxes[last_r, 2], (97 - last_r, 4)))
    assert (boxes[:, 1:, 2] > boxes[:, 1:, 0]).all()                      # never a zero box once seen


def test_blanked_hands_reuse_earlier_box(kp):
    blank = kp.copy()
    blank[30:36, PARTS["left_hand"]] = 0.0
    blank[30:36, PARTS["right_hand"]] = 0.0
    boxes, found = crop_boxes(blank, FRAME)
    ref, _ = crop_boxes(kp, FRAME)
    assert not found[30:36, 1:].any() and found[29, 1:].all()
    for t in range(30, 36):
        np.testing.assert_array_equal(boxes[t, 1:], boxes[29, 1:])
    assert not np.array_equal(ref[33, 1:], ref[29, 1:])                 # the hands did move meanwhile
    np.testing.assert_array_equal(boxes[36:], ref[36:])


def test_never_found_part_zero_box_and_flag(kp):
    blank = kp.copy()
    blank[:, PARTS["right_hand"]] = 0.0
    boxes, found = crop_boxes(blank, FRAME)
    assert not found[:, 2].any() and (boxes[:, 2] == 0).all()
    assert missing_parts(found) == ["right_hand"]
    assert missing_parts(crop_boxes(kp, FRAME)[1]) == []


def test_part_found_uses_confidence():
    kp = np.zeros((2, 77, 3), np.float32)
    kp[0, PARTS["left_hand"], 2] = 0.9
    kp[1, PARTS["left_hand"], 2] = 0.1          # pose-estimator scores below the threshold
    np.testing.assert_array_equal(part_found(kp), [[False, False, True, False], [False] * 4])


def test_box_near_edge_shifted_not_squashed():
    kp = np.zeros((1, 77, 3), np.float32)
    hand = PARTS["right_hand"]
    kp[0, hand, 0] = np.linspace(2, 40, 21)    # a hand touching the left edge
    kp[0, hand, 1] = np.linspace(100, 130, 21)
    kp[0, hand, 2] = 1
    (box,), _ = crop_boxes(kp, (320, 240), margin=0.25)
    x0, y0, x1, y1 = box[2]
    assert x0 == 0 and x1 - x0 == y1 - y0 and x1 - x0 >= 57  # 38 px extent * 1.5


def test_crop_frame_content_and_zero_box():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[50:100, 200:250] = (255, 0, 0)
    boxes = np.array([[200, 50, 250, 100], [0, 0, 0, 0], [300, 0, 320, 240]])
    crops = crop_frame(frame, boxes, size=224)
    assert crops.shape == (3, 224, 224, 3) and crops.dtype == np.uint8
    assert (crops[0, 10:-10, 10:-10] == (255, 0, 0)).all()
    assert not crops[1].any()
    # a 20x240 strip (clipped box) is padded to a square, not stretched: its sides stay black
    strip = frame.copy()
    strip[:, 300:] = 255
    c = crop_frame(strip, boxes[2:], size=224)[0]
    assert (c[:, 112] == 255).all() and not c[:, :80].any() and not c[:, -80:].any()
