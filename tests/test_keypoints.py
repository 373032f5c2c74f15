"""The 77-point layout, its COCO-WholeBody / Holistic mappings and the part-wise normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from rvlf.data import keypoints as K
from rvlf.errors import RvlfError


def test_parts_cover_77_points_in_the_paper_order():
    assert list(K.PARTS) == ["body", "left_hand", "right_hand", "mouth", "face"]
    sizes = [s.stop - s.start for s in K.PARTS.values()]
    assert sizes == [9, 21, 21, 8, 18] and sum(sizes) == K.NUM_POINTS == 77
    assert [s.start for s in K.PARTS.values()] == [0, 9, 30, 51, 59]


def test_part_edges_are_local_connected_and_unique():
    for part, edges in K.PART_EDGES.items():
        n = K.PARTS[part].stop - K.PARTS[part].start
        assert all(0 <= a < n and 0 <= b < n and a != b for a, b in edges), part
        assert len({frozenset(e) for e in edges}) == len(edges), part
        reached, frontier = {0}, [0]  # breadth-first search: every point is reachable
        while frontier:
            u = frontier.pop()
            for a, b in edges:
                for x, y in ((a, b), (b, a)):
                    if x == u and y not in reached:
                        reached.add(y)
                        frontier.append(y)
        assert reached == set(range(n)), part
    assert len(K.PART_EDGES["left_hand"]) == 20 and len(K.PART_EDGES["mouth"]) == 8


def test_coco_indices_follow_the_issue():
    idx = K.COCO_INDEX
    assert len(idx) == 77 and len(set(idx.tolist())) == 77
    assert idx[K.PARTS["left_hand"]].tolist() == list(range(91, 112))
    assert idx[K.PARTS["right_hand"]].tolist() == list(range(112, 133))
    assert idx[K.PARTS["mouth"]].tolist() == list(range(83, 91))
    assert {0, 5, 6, 7, 8, 9, 10} <= set(idx[K.PARTS["body"]].tolist())
    face = idx[K.PARTS["face"]]
    assert ((face >= 23) & (face <= 82)).all()  # iBUG face points outside the mouth (83-90 inner lip)
    assert not set(face.tolist()) & set(range(71, 83))  # nor the outer lip


def _coco_mirror(i: int) -> int:
    """COCO-WholeBody's own left/right flip of one index (body + iBUG-68 face + hands)."""
    body = {1: 2, 3: 4, 5: 6, 7: 8, 9: 10, 11: 12, 13: 14, 15: 16}
    body.update({v: k for k, v in body.items()})
    if i < 17:
        return body.get(i, i)
    if 91 <= i < 133:
        return i + 21 if i < 112 else i - 21
    f = i - 23
    pairs = {k: 16 - k for k in range(17)}
    pairs.update({17 + k: 26 - k for k in range(10)})
    pairs.update({36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 27: 27, 28: 28, 29: 29, 30: 30, 31: 35, 32: 34,
                  33: 33, 48: 54, 49: 53, 50: 52, 51: 51, 55: 59, 56: 58, 57: 57, 60: 64, 61: 63, 62: 62, 65: 67, 66: 66})
    pairs.update({v: k for k, v in list(pairs.items())})
    return 23 + pairs[f]


def test_mirror_index_agrees_with_coco_flip_pairs():
    assert sorted(K.MIRROR_INDEX.tolist()) == list(range(77))
    assert (K.MIRROR_INDEX[K.MIRROR_INDEX] == np.arange(77)).all()
    for i in range(77):
        assert K.COCO_INDEX[K.MIRROR_INDEX[i]] == _coco_mirror(int(K.COCO_INDEX[i])), i


def test_from_coco_wholebody_picks_the_listed_points():
    t = 4
    kp = np.zeros((t, 133, 3), np.float32)
    kp[..., 0] = np.arange(133)                  # x encodes the source index
    kp[..., 1] = np.arange(t)[:, None]           # y encodes the frame
    kp[..., 2] = 0.9
    out = K.from_coco_wholebody(kp)
    assert out.shape == (t, 77, 3) and out.dtype == np.float32
    assert (out[0, :, 0] == K.COCO_INDEX).all() and (out[:, 5, 1] == np.arange(t)).all()
    with pytest.raises(RvlfError, match="133"):
        K.from_coco_wholebody(np.zeros((t, 77, 3)))


def test_from_holistic_full_layouts_use_pose_face_and_hands():
    t = 3
    for n in (543, 576):
        pts = np.zeros((t, n, 4), np.float32)
        pts[..., 0] = np.arange(n)
        pts[..., 3] = 1.0
        out = K.from_holistic(pts)
        assert out.shape == (t, 77, 3)
        assert out[0, K.PARTS["body"], 0].tolist() == [0, 7, 8, 11, 12, 13, 14, 15, 16]
        assert out[0, K.PARTS["left_hand"], 0].tolist() == list(range(501, 522))
        assert out[0, K.PARTS["right_hand"], 0].tolist() == list(range(522, 543))
        assert out[0, K.PARTS["mouth"], 0].tolist() == [33 + v for v in (78, 82, 13, 312, 308, 317, 14, 87)]
        assert (out[..., 2] == 1).all()
    # C = 3: the last channel is still confidence; NaN points become missing
    pts = np.ones((t, 543, 3), np.float32)
    pts[:, 501:522] = np.nan
    out = K.from_holistic(pts)
    assert not np.isnan(out).any() and (out[:, K.PARTS["left_hand"], 2] == 0).all()


def test_from_holistic_reduced_layout_maps_by_name():
    t = 2
    pts = np.zeros((t, 178, 3), np.float32)
    pts[..., 0] = np.arange(178)
    pts[..., 2] = 1.0
    out = K.from_holistic(pts)
    body = out[0, K.PARTS["body"]]
    assert (body[:3, 2] == 0).all()                         # nose and ears are not kept
    assert body[3:, 0].tolist() == [0, 1, 2, 3, 4, 5]       # shoulders, elbows, wrists
    assert out[0, K.PARTS["left_hand"], 0].tolist() == list(range(136, 157))
    face_ids = K.REDUCED_FACE_MESH
    assert out[0, 51, 0] == 8 + face_ids.index(78)           # inner-lip corner
    assert out[0, 76, 2] == 0                                # the nose tip is not kept either


def test_reduced_face_ids_are_mediapipe_contours():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_CONTOURS

    assert K.REDUCED_FACE_MESH == tuple(sorted({i for e in FACEMESH_CONTOURS for i in e}))


def test_from_holistic_rejects_unknown_point_count():
    with pytest.raises(RvlfError, match="unknown Holistic layout with 100 points"):
        K.from_holistic(np.zeros((2, 100, 3)))


def _skeleton(t: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.zeros((t, 77, 3), np.float32)
    kp[..., :2] = rng.uniform(100, 500, size=(t, 77, 2))
    kp[..., 2] = rng.uniform(0.5, 1.0, size=(t, 77))
    return kp


def test_normalize_is_partwise_and_keeps_confidence():
    kp = _skeleton()
    out = K.normalize_keypoints(kp)
    assert out.dtype == np.float32 and out.shape == kp.shape
    np.testing.assert_allclose(out[..., 2], kp[..., 2])
    body = kp[:, K.PARTS["body"], :2].reshape(-1, 2)
    scale = (body.max(0) - body.min(0)).max()
    # hands relative to their wrist, face and mouth relative to the face's nose tip
    lh = K.PARTS["left_hand"]
    expect = np.clip(2 * (kp[:, lh, :2] - kp[:, lh.start, None, :2]) / scale, -1, 1)
    np.testing.assert_allclose(out[:, lh, :2], expect, rtol=1e-5, atol=1e-6)
    assert (out[:, lh.start, :2] == 0).all()
    mouth = K.PARTS["mouth"]
    expect = np.clip(2 * (kp[:, mouth, :2] - kp[:, 76, None, :2]) / scale, -1, 1)
    np.testing.assert_allclose(out[:, mouth, :2], expect, rtol=1e-5, atol=1e-6)
    assert np.abs(out[..., :2]).max() <= 1.0
    # the body fills [-1, 1] along its larger side
    b = out[:, K.PARTS["body"], :2].reshape(-1, 2)
    assert np.isclose(np.abs(b).max(), 1.0)


def test_normalize_is_translation_and_scale_invariant():
    kp = _skeleton(seed=1)
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] * 3.0 + 17.0
    np.testing.assert_allclose(K.normalize_keypoints(moved), K.normalize_keypoints(kp), atol=1e-5)


def test_normalize_missing_points_and_frames_are_zero_never_nan():
    kp = _skeleton(t=4, seed=2)
    kp[1] = 0.0                                    # a frame with nothing detected
    kp[2, K.PARTS["right_hand"], 2] = 0.0           # right hand missing in frame 2
    kp[3, 40, :2] = np.nan                          # a NaN point
    kp[0, 30, 2] = 0.0                              # right wrist (hand) missing: body wrist anchors
    out = K.normalize_keypoints(kp)
    assert not np.isnan(out).any()
    assert (out[1] == 0).all() and (out[2, K.PARTS["right_hand"]] == 0).all() and (out[3, 40] == 0).all()
    assert (out[0, 31:51, 2] > 0).all() and (out[0, 30] == 0).all()
    assert (K.normalize_keypoints(np.zeros((3, 77, 3))) == 0).all()
    assert K.normalize_keypoints(np.full((2, 77, 3), np.nan)).sum() == 0
    # a hand with no wrist anywhere (neither hand nor body) cannot be placed: zeros
    kp2 = _skeleton(t=2, seed=3)
    kp2[:, [7, 9], 2] = 0.0
    assert (K.normalize_keypoints(kp2)[:, K.PARTS["left_hand"]] == 0).all()


def test_units_from_the_bulk_of_confident_points(fixtures_dir):
    """Real 320x240 Holistic pixels stay pixels; divided by the frame size they are scaled back, also
    with stray points (one far outside, a twentieth at 2.5); keypoints that cannot lie in a smaller frame
    are one error naming both sizes."""
    from rvlf.data.keypoints import to_pixels
    from rvlf.data.poses import read_keypoints
    from rvlf.errors import InputFileError

    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")
    same, units = to_pixels(kp, 320, 240)
    assert units == "pixels" and np.array_equal(same, kp)
    norm = kp.copy()
    norm[..., 0] /= 320
    norm[..., 1] /= 240
    norm[5, 60, 0] = 2.5                                   # one confident point off the frame
    conf = np.flatnonzero(norm[..., 2].ravel() > 0.3)
    norm.reshape(-1, 3)[conf[::20], 0] = 2.5               # and a twentieth of them
    back, units = to_pixels(norm, 320, 240)
    assert units == "normalised"
    keep = norm[..., 0] != 2.5
    np.testing.assert_allclose(back[keep], kp[keep], atol=1e-3)
    for size, scale in (((64, 48), 1.0), ((320, 240), 4.0)):   # a smaller clip; a 1280x960 copy's pixels
        big = kp.copy()
        big[..., :2] *= scale
        with pytest.raises(InputFileError, match=rf"kp\.npz: keypoints \(pixels\) span \d+x\d+ pixels .* but the "
                                                 rf"frames of v\.mp4 are {size[0]}x{size[1]}"):
            to_pixels(big, *size, path="kp.npz", video="v.mp4")
    empty = np.zeros((4, 77, 3), np.float32)
    assert to_pixels(empty, 64, 48)[1] == "unknown"
