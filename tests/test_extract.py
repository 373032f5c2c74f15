"""`rvlf extract` end to end on the real fixtures (one shared MediaPipe run) and `rvlf analyze similarity`."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import cli_output
from rvlf.data.crops import CROP_PARTS, crop_boxes, part_found
from rvlf.data.extract import find_jobs
from rvlf.data.features import load_video_features, save_tiny_dinov2
from rvlf.data.keypoints import PARTS

BAD = ("empty.mp4", "text.mp4", "truncated.mp4", "missing.mp4")


def _cli(*argv) -> tuple[int, str, str]:
    return cli_output(*argv)


@pytest.fixture(scope="module")
def run(tmp_path_factory, fixtures_dir):
    """One extraction of the signer video, the photo and four bad files, with a tiny DINOv2."""
    tmp = tmp_path_factory.mktemp("extract")
    tiny = save_tiny_dinov2(tmp / "tiny-dinov2")
    bad = tmp / "bad"
    bad.mkdir()
    data = (fixtures_dir / "signer_58frames.mp4").read_bytes()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video\n" * 10)
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    inputs = [fixtures_dir / "signer_58frames.mp4", fixtures_dir / "human_all_parts.png", *(bad / b for b in BAD)]
    out = tmp / "out"
    rc, stdout, stderr = _cli("extract", *inputs, "--out", out, "--dino", tiny, "--batch-size", 16)
    return {"tmp": tmp, "tiny": tiny, "inputs": inputs, "out": out, "rc": rc, "stdout": stdout, "stderr": stderr}


def test_signer_video_all_frames_body_face_and_features(run):
    f = load_video_features(run["out"] / "signer_58frames.npz")
    kp, dino, meta = f["keypoints"], f["dino"], f["meta"]
    assert kp.shape == (58, 77, 3) and dino.shape == (58, 3, 32) and dino.dtype == np.float16
    found = part_found(kp)
    assert found[:, 0].all() and found[:, 1].all()                       # body and face in every frame
    assert 15 <= found[:, 3].sum() <= 30                                 # the right hand comes and goes
    assert meta["num_frames"] == 58 and (meta["width"], meta["height"]) == (540, 720)
    assert meta["fps"] == pytest.approx(29.92, abs=0.05) and meta["dino_model"] == str(run["tiny"])
    assert meta["detection_rates"]["face"] == 1.0
    assert np.isfinite(dino.astype(np.float32)).all() and np.abs(dino[:, 0]).sum() > 0
    for p, name in enumerate(CROP_PARTS):                                # a part never seen: zero features
        assert (name in meta["missing_parts"]) == (not np.abs(dino[:, p]).any())


def test_photo_all_four_parts_and_boxes_hold_them(run):
    f = load_video_features(run["out"] / "human_all_parts.npz")
    kp, meta = f["keypoints"], f["meta"]
    assert kp.shape == (1, 77, 3) and part_found(kp).all() and meta["missing_parts"] == []
    boxes, found = crop_boxes(kp, (meta["width"], meta["height"]), margin=meta["crop_margin"])
    assert found.all()
    for p, part in enumerate(CROP_PARTS.values()):
        x0, y0, x1, y1 = boxes[0, p]
        pts = kp[0, part, :2]
        assert (pts[:, 0] >= x0).all() and (pts[:, 0] < x1).all() and (pts[:, 1] >= y0).all() and (pts[:, 1] < y1).all()
    # the three boxes are distinct regions, and each hand box holds its own body wrist (signer's side)
    lbox, rbox = boxes[0, 1], boxes[0, 2]
    assert not np.array_equal(lbox, rbox)
    for box, wrist in ((lbox, kp[0, 7]), (rbox, kp[0, 8])):
        assert box[0] <= wrist[0] < box[2] and box[1] <= wrist[1] < box[3]
    face = kp[0, PARTS["face"], :2].mean(0)
    assert not (lbox[0] <= face[0] < lbox[2] and lbox[1] <= face[1] < lbox[3])


def test_holistic_raw_points_pixels_and_sides(fixtures_dir, capfd):
    from rvlf.data.holistic import HolisticExtractor
    from rvlf.data.video import read_image

    image = read_image(fixtures_dir / "human_all_parts.png")
    with HolisticExtractor(static_image_mode=True) as extractor:
        pts = extractor.process(image)
    assert pts.shape == (543, 3) and pts.dtype == np.float32
    face, left, right = pts[33:501], pts[501:522], pts[522:543]
    assert (face[:, 2] == 1).all() and (left[:, 2] == 1).all() and (right[:, 2] == 1).all()
    assert 100 < face[:, 0].mean() < 1928 - 100 and face[:, 1].max() > 10  # pixels, not [0, 1]
    # MediaPipe's left hand is the signer's left: its wrist sits on pose LEFT_WRIST (15), not 16
    assert np.linalg.norm(left[0, :2] - pts[15, :2]) < np.linalg.norm(left[0, :2] - pts[16, :2])
    assert np.linalg.norm(right[0, :2] - pts[16, :2]) < np.linalg.norm(right[0, :2] - pts[15, :2])
    captured = capfd.readouterr()
    assert "Feedback manager" not in captured.err and "XNNPACK" not in captured.err


def test_fallback_boxes_on_real_mediapipe_output(run):
    kp = load_video_features(run["out"] / "signer_58frames.npz")["keypoints"]
    boxes, found = crop_boxes(kp, (540, 720))
    rh = found[:, 2]
    missing = np.flatnonzero(~rh)
    assert rh.any() and len(missing)
    for t in missing:
        before = np.flatnonzero(rh[:t])
        src = before[-1] if len(before) else np.flatnonzero(rh)[0]
        np.testing.assert_array_equal(boxes[t, 2], boxes[src, 2])


def test_bad_inputs_reported_others_carry_on(run):
    assert run["rc"] == 1
    failures = [line for line in run["stderr"].splitlines() if "failed:" in line]
    assert len(failures) == len(BAD)
    for name in BAD:
        assert sum(name in line for line in failures) == 1
    assert "2 done, 0 skipped" in run["stdout"] and "4 failed" in run["stdout"]
    assert "mean detection rate: body 100.0%, face 100.0%" in run["stdout"]
    listed = run["stdout"].split("failed (4; the reasons are above):", 1)[1]
    assert all(name in listed for name in BAD)
    for name in BAD:  # each error printed once (stderr, as it failed); the summary names the input only
        assert sum(name in line for line in (run["stdout"] + run["stderr"]).splitlines()) == 2
    # no partial or temporary files: exactly the two good outputs
    assert sorted(p.name for p in run["out"].iterdir()) == ["human_all_parts.npz", "signer_58frames.npz"]
    assert "Feedback manager" not in run["stderr"] and "absl" not in run["stderr"]  # MediaPipe kept quiet


def test_resume_skips_done_videos(run):
    target = run["out"] / "signer_58frames.npz"
    before = target.stat().st_mtime_ns
    rc, stdout, _ = _cli("extract", *run["inputs"][:2], "--out", run["out"], "--dino", run["tiny"])
    assert rc == 0 and "0 done, 2 skipped" in stdout
    assert target.stat().st_mtime_ns == before


def test_reused_keypoints_and_frame_count_check(run, fixtures_dir):
    out = run["tmp"] / "reuse"
    video = fixtures_dir / "signer_58frames.mp4"
    rc, stdout, _ = _cli("extract", video, "--out", out, "--keypoints", run["out"] / "signer_58frames.npz",
                         "--no-features")
    assert rc == 0 and "1 done" in stdout
    got = load_video_features(out / "signer_58frames.npz")
    first = load_video_features(run["out"] / "signer_58frames.npz")
    np.testing.assert_array_equal(got["keypoints"], first["keypoints"])
    assert "dino" not in got
    # a 97-frame keypoint file of 320x240 frames does not fit the 58-frame 540x720 video (its size is
    # checked first, before decoding; the frame count check: test_edit_listed_clip_...)
    rc, stdout, stderr = _cli("extract", video, "--out", out, "--overwrite", "--no-features",
                              "--keypoints", fixtures_dir / "holistic_97frames.pose")
    (line,) = stderr.strip().splitlines()
    assert rc == 1 and "holistic_97frames.pose: keypoints of 320x240 frames" in line and "are 540x720" in line
    assert (out / "signer_58frames.npz").exists()                       # the earlier good file is kept


def test_workers_and_frame_folder(run, fixtures_dir):
    frames = run["tmp"] / "videos" / "clip01"
    frames.mkdir(parents=True)
    photo = cv2.imread(str(fixtures_dir / "human_all_parts.png"))
    small = cv2.resize(photo, (480, 480), interpolation=cv2.INTER_AREA)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), small)
    (run["tmp"] / "videos" / "broken.mp4").write_bytes(b"\0" * 100)
    (run["tmp"] / "videos" / "readme.txt").write_text("not an input")
    out = run["tmp"] / "out_workers"
    rc, stdout, stderr = _cli("extract", run["tmp"] / "videos", "--out", out, "--workers", "2", "--no-features")
    assert rc == 1 and "1 done" in stdout and "1 failed" in stdout and "broken.mp4" in stderr
    f = load_video_features(out / "clip01.npz")
    assert f["keypoints"].shape == (3, 77, 3) and f["meta"]["fps"] == 25.0 and part_found(f["keypoints"]).all()


def test_find_jobs_names_and_collisions(tmp_path, fixtures_dir):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.mp4").write_bytes(b"")
    jobs = find_jobs([tmp_path], tmp_path / "out")
    assert sorted(j.out.relative_to(tmp_path / "out").as_posix() for j in jobs) == ["a/x.npz", "b/x.npz"]
    from rvlf.errors import RvlfError

    with pytest.raises(RvlfError, match="both be written"):
        find_jobs([tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4"], tmp_path / "out")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "s1", "split": "train", "text": "hi", "lang": "en", "video": "a/x.mp4"}\n'
                        '{"id": "s2", "split": "dev", "text": "yo", "lang": "en"}\n')
    (job,) = find_jobs([manifest], tmp_path / "out")
    assert job.source == tmp_path / "a" / "x.mp4" and job.out == tmp_path / "out" / "s1.npz"


def test_analyze_similarity_plot(run, tmp_path):
    png = tmp_path / "sim.png"
    rc, stdout, _ = _cli("analyze", "similarity", run["out"], "--out", png)
    assert rc == 0 and png.is_file()
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] >= 400 and image.shape[1] >= 600
    assert "body" in stdout and "face   (DINOv2)" in stdout and "hands  (DINOv2)" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.png"]
    # a corrupt feature file is named and skipped; an empty folder is an error
    bad = tmp_path / "feats"
    bad.mkdir()
    (bad / "x.npz").write_text("junk")
    (bad / "good.npz").write_bytes((run["out"] / "signer_58frames.npz").read_bytes())
    rc, _, stderr = _cli("analyze", "similarity", bad, "--out", tmp_path / "b.png")
    assert rc == 1 and str(bad / "x.npz") in stderr and (tmp_path / "b.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, stderr = _cli("analyze", "similarity", empty, "--out", tmp_path / "c.png")
    assert rc == 2 and "no .npz" in stderr and len(stderr.strip().splitlines()) == 1
    # an --out that cannot be written is refused before the features are read, one line
    rc, _, stderr = _cli("analyze", "similarity", run["out"], "--out", empty)
    assert rc == 2 and stderr == f"rvlf analyze: error: --out {empty}: is a folder; give the file to write, e.g. " \
                                 f"--out {empty / 'similarity.png'}\n"
    rc, _, stderr = _cli("analyze", "similarity", run["out"], "--out", png / "x.png")
    assert rc == 2 and stderr == f"rvlf analyze: error: --out {png / 'x.png'}: {png} is a file, not a folder\n"
    assert not any(empty.iterdir())


# --- real-world inputs: rotation, edit lists, keypoint units, pose pickles, empty signers ----------------------


def test_rotated_phone_video_found_upright(run, fixtures_dir):
    """MediaPipe sees the signer upright: body in every frame where the original has it, meta 540x720."""
    out = run["tmp"] / "rotated"
    rc, stdout, _ = _cli("extract", fixtures_dir / "real_formats" / "signer_rotated90.mp4", "--out", out,
                         "--no-features")
    assert rc == 0 and "1 done" in stdout
    f = load_video_features(out / "signer_rotated90.npz")
    original = load_video_features(run["out"] / "signer_58frames.npz")["keypoints"]
    kp, meta = f["keypoints"], f["meta"]
    assert (meta["width"], meta["height"], meta["display_rotation"]) == (540, 720, 90)
    assert part_found(kp)[:, 0].sum() >= part_found(original)[:, 0].sum() == 58
    assert meta["detection_rates"]["body"] == 1.0 and meta["detection_rates"]["face"] == 1.0
    # the same upright signer: the nose (point 0) where the original's is, to a few pixels
    assert np.median(np.linalg.norm(kp[:, 0, :2] - original[:, 0, :2], axis=1)) < 10


def test_edit_listed_clip_extracts_the_frames_that_play(run, fixtures_dir):
    from media_helpers import cut_with_edit_list

    cut = cut_with_edit_list(fixtures_dir / "signer_58frames.mp4", run["tmp"] / "cut.mp4", skip=13)
    kp = load_video_features(run["out"] / "signer_58frames.npz")["keypoints"]
    np.savez(run["tmp"] / "cut_kp.npz", keypoints=kp[13:])       # keypoints of the 45 frames that play
    np.savez(run["tmp"] / "all_kp.npz", keypoints=kp)
    out = run["tmp"] / "cut_out"
    rc, stdout, stderr = _cli("extract", cut, "--out", out, "--keypoints", run["tmp"] / "cut_kp.npz", "--no-features")
    assert rc == 0 and "truncated" not in stderr and "45 frames" in stdout
    assert load_video_features(out / "cut.npz")["meta"]["num_frames"] == 45
    rc, _, stderr = _cli("extract", cut, "--out", out, "--overwrite", "--keypoints", run["tmp"] / "all_kp.npz",
                         "--no-features")
    assert rc == 1 and "keypoints cover 58 frames but" in stderr and "cut.mp4 has 45" in stderr


def test_pixel_keypoints_on_a_smaller_clip_is_one_clear_error(run, fixtures_dir):
    """Keypoints in pixels of the 540x720 original next to a 64x48 copy of it: no zero features, an error."""
    from media_helpers import write_video
    from rvlf.data.video import read_frames

    frames, _ = read_frames(fixtures_dir / "signer_58frames.mp4")
    small = write_video(run["tmp"] / "small.mp4", np.stack([cv2.resize(f, (48, 64)) for f in frames]))
    kp_file = run["tmp"] / "bare_kp.npz"  # keypoints alone: the file states no frame size to scale from
    np.savez(kp_file, keypoints=load_video_features(run["out"] / "signer_58frames.npz")["keypoints"])
    out = run["tmp"] / "small_out"
    rc, stdout, stderr = _cli("extract", small, "--out", out, "--keypoints", kp_file, "--no-features")
    assert rc == 1 and "1 failed" in stdout
    (line,) = [line for line in stderr.splitlines() if "failed:" in line]
    assert str(kp_file) in line and "(pixels)" in line and "but the frames of" in line and "are 48x64" in line
    assert not (out / "small.npz").exists()


def test_normalised_keypoints_with_one_off_frame_outlier(run, fixtures_dir):
    """x/width, y/height keypoints with one confident point at x=2.5: still scaled to pixels, and
    the boxes and detection rates are those of the file without that point."""
    first = load_video_features(run["out"] / "signer_58frames.npz")
    kp = first["keypoints"]
    norm = kp.copy()
    norm[..., 0] /= 540
    norm[..., 1] /= 720
    t, point = 20, PARTS["face"].start + 3
    assert norm[t, point, 2] > 0.3
    norm[t, point, 0] = 2.5
    np.savez(run["tmp"] / "norm.npz", keypoints=norm)
    out = run["tmp"] / "norm_out"
    rc, _, stderr = _cli("extract", fixtures_dir / "signer_58frames.mp4", "--out", out, "--keypoints",
                         run["tmp"] / "norm.npz", "--no-features")
    assert rc == 0, stderr
    f = load_video_features(out / "signer_58frames.npz")
    assert f["meta"]["keypoint_file_units"] == "normalised"
    np.testing.assert_allclose(np.delete(f["keypoints"][t], point, 0), np.delete(kp[t], point, 0), atol=1e-3)
    assert f["keypoints"][t, point, 0] == pytest.approx(2.5 * 540)
    without = kp.copy()
    without[t, point, 2] = 0.0
    want_boxes, want_found = crop_boxes(without, (540, 720))
    boxes, found = crop_boxes(f["keypoints"], (540, 720))
    np.testing.assert_array_equal(found, want_found)
    assert np.abs(boxes - want_boxes).max() <= 1
    assert (boxes[:, 0, 2] - boxes[:, 0, 0] > 100).all()                # a face box, not a 16x16 corner
    rates = f["meta"]["detection_rates"]
    assert rates == pytest.approx(first["meta"]["detection_rates"]) and rates["face"] == 1.0


def test_unisign_pose_pkl_on_a_mac_frame_folder(run, fixtures_dir):
    """The 6-frame folder (with `._*` companions) and its Uni-Sign pkl: the window's 4 frames."""
    out = run["tmp"] / "unisign_out"
    rc, stdout, stderr = _cli("extract", fixtures_dir / "real_formats" / "frames_macos_copy", "--out", out,
                              "--keypoints", fixtures_dir / "real_formats" / "unisign_pose_lists.pkl",
                              "--dino", run["tiny"])
    assert rc == 0, stderr
    f = load_video_features(out / "frames_macos_copy.npz")
    meta = f["meta"]
    assert f["keypoints"].shape == (4, 77, 3) and f["dino"].shape == (4, 3, 32)
    assert (meta["num_frames"], meta["first_frame"], meta["video_frames"]) == (4, 1, 6)
    assert (meta["width"], meta["height"], meta["keypoint_file_units"]) == (270, 360, "normalised")
    assert meta["detection_rates"]["body"] == 0.75 and (f["keypoints"][3, :, 2] == 0).all()


def _empty_keypoint_files(folder, frames: int) -> dict:
    nan = np.full((frames, 77, 3), np.nan, np.float32)
    np.savez(folder / "all_nan.npz", keypoints=nan)
    np.savez(folder / "all_zero.npz", keypoints=np.zeros((frames, 77, 3), np.float32))
    return {"all_nan": folder / "all_nan.npz", "all_zero": folder / "all_zero.npz"}


def test_empty_signers_fail_unless_allowed(run, fixtures_dir):
    from media_helpers import blank_video

    videos = run["tmp"] / "empty_in"
    videos.mkdir()
    blank = blank_video(videos / "blank.mp4")
    files = _empty_keypoint_files(videos, 58)
    out = run["tmp"] / "empty_out"
    for kind, kp_file in files.items():
        rc, stdout, stderr = _cli("extract", fixtures_dir / "signer_58frames.mp4", "--out", out / kind,
                                  "--keypoints", kp_file, "--no-features")
        assert rc == 1 and "1 failed" in stdout, kind
        # one input: its error once, on stderr (not again in the summary)
        assert f"{kp_file}: no signer found: the body is detected in none of its 58 frames" in stderr
        assert "no signer found" not in stdout and stderr.count("no signer found") == 1
        assert "--allow-empty" in stderr and not (out / kind / "signer_58frames.npz").exists()
    rc, stdout, stderr = _cli("extract", blank, "--out", out / "blank", "--no-features")
    assert rc == 1 and f"{blank}: no signer found" in stderr and "in none of its 12 frames" in stderr
    rc, stdout, _ = _cli("extract", blank, "--out", out / "blank", "--no-features", "--allow-empty")
    assert rc == 0 and "1 done" in stdout and "written without a signer" in stdout and str(blank) in stdout
    meta = load_video_features(out / "blank" / "blank.npz")["meta"]
    assert meta["detection_rates"]["body"] == 0.0


def test_a_keypoint_file_given_as_input_says_what_to_do(fixtures_dir, tmp_path):
    """`rvlf extract X.pose` (or a Uni-Sign .pkl) blamed "not a readable video (Invalid data found ...)";
    it now says the file is a keypoint file and how to use it, one line each, exit 1."""
    inputs = [fixtures_dir / "holistic_97frames.pose", fixtures_dir / "real_formats" / "unisign_pose_lists.pkl"]
    rc, out, err = _cli("extract", *inputs, "--out", tmp_path / "out", "--no-features")
    assert rc == 1 and "2 failed" in out
    failures = [line for line in err.splitlines() if "failed:" in line]
    assert len(failures) == 2
    for path, line in zip(inputs, failures):
        assert line == (f"rvlf extract: failed: {path}: a keypoint file, not a video: extraction needs the video or "
                        "frames it was made from (rvlf extract VIDEO --keypoints FILE); rvlf translate reads it as "
                        "it is")


def test_without_mediapipe_one_line_says_what_to_install(run, fixtures_dir, tmp_path, monkeypatch):
    """`make demo` installs rvlf without MediaPipe: extracting a video (or translating one) then said
    "ModuleNotFoundError: No module named 'mediapipe'" once per video. Now one line before any file, exit 2;
    keypoints the user already has still work without MediaPipe."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mediapipe" else real_find_spec(name, *a))
    video = fixtures_dir / "signer_58frames.mp4"
    rc, out, err = _cli("extract", video, fixtures_dir / "human_all_parts.png", "--out", tmp_path / "out",
                        "--no-features")
    assert rc == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()] and "MediaPipe is not installed" in err
    assert "pip install 'rvlf[mediapipe]'" in err and not (tmp_path / "out").exists()
    from rvlf.data.holistic import HolisticExtractor
    from rvlf.errors import RvlfError

    with pytest.raises(RvlfError, match="MediaPipe is not installed"):  # rvlf translate and the app build one
        HolisticExtractor()
    rc, out, err = _cli("extract", video, "--out", tmp_path / "kp", "--no-features",
                        "--keypoints", run["out"] / "signer_58frames.npz")  # made with MediaPipe, before the patch
    assert rc == 0 and "1 done" in out, err


# --- keypoint files that state their frame size; outputs of another source ------------------------------------


def test_keypoints_of_a_smaller_copy_are_scaled_with_a_note(run, fixtures_dir):
    """The 270x360 WebM's rvlf file (meta width/height) on the upright 540x720 phone video: the same
    aspect ratio, so scaled x2 (one note line), crops where the signer is; the raw 720x540 size: an error."""
    webm_out = run["tmp"] / "webm"
    rc, _, stderr = _cli("extract", fixtures_dir / "real_formats" / "signer_58frames.webm", "--out", webm_out,
                         "--no-features")
    assert rc == 0, stderr
    small = webm_out / "signer_58frames.npz"
    assert (load_video_features(small)["meta"]["width"], load_video_features(small)["meta"]["height"]) == (270, 360)
    out = run["tmp"] / "scaled"
    rotated = fixtures_dir / "real_formats" / "signer_rotated90.mp4"
    rc, stdout, stderr = _cli("extract", rotated, "--out", out, "--keypoints", small, "--no-features")
    assert rc == 0 and "1 done" in stdout, stderr
    (note,) = stderr.strip().splitlines()
    assert f"{small}: keypoints of 270x360 frames scaled to the 540x720 frames of {rotated}" in note
    got = load_video_features(out / "signer_rotated90.npz")
    assert got["meta"]["keypoint_file_size"] == [270, 360]
    original = load_video_features(run["out"] / "signer_58frames.npz")["keypoints"]  # MediaPipe on the 540x720 mp4
    assert np.median(np.linalg.norm(got["keypoints"][:, 0, :2] - original[:, 0, :2], axis=1)) < 10
    # a file stating another aspect ratio: one line naming both sizes (and the likely cause, a sideways copy)
    sideways = run["tmp"] / "sideways.npz"
    f = load_video_features(run["out"] / "signer_58frames.npz")
    from rvlf.data.features import save_video_features

    save_video_features(sideways, f["keypoints"][:, :, [1, 0, 2]], None, {**f["meta"], "width": 720, "height": 540})
    rc, stdout, stderr = _cli("extract", rotated, "--out", out, "--overwrite", "--keypoints", sideways,
                              "--no-features")
    (line,) = stderr.strip().splitlines()
    assert rc == 1 and "keypoints of 720x540 frames" in line and "are 540x720" in line and "sideways" in line


def test_pose_header_size_is_used(run, fixtures_dir, tmp_path):
    """A .pose file states its frame size (header dimensions): 640x480 against 540x720 is an error."""
    from rvlf.data.poses import load_keypoint_file

    assert load_keypoint_file(fixtures_dir / "lexicon_dsgs" / "essen.pose").size == (640, 480)
    assert load_keypoint_file(fixtures_dir / "holistic_97frames.pose").size == (320, 240)
    assert load_keypoint_file(fixtures_dir / "real_formats" / "unisign_pose_lists.pkl").size is None
    rc, _, stderr = _cli("extract", fixtures_dir / "signer_58frames.mp4", "--out", tmp_path, "--no-features",
                         "--keypoints", fixtures_dir / "lexicon_dsgs" / "essen.pose")
    (line,) = stderr.strip().splitlines()
    assert rc == 1 and "essen.pose: keypoints of 640x480 frames" in line and "sideways" not in line


def test_existing_output_of_another_source_is_not_skipped(run, fixtures_dir):
    """OUT/signer_58frames.npz of the .mp4 is not "already extracted" for the .webm of the same name."""
    target = run["out"] / "signer_58frames.npz"
    before = target.stat().st_mtime_ns
    webm = fixtures_dir / "real_formats" / "signer_58frames.webm"
    rc, stdout, stderr = _cli("extract", webm, "--out", run["out"], "--no-features")
    assert rc == 1 and "0 skipped" in stdout and "1 failed" in stdout
    (line,) = stderr.strip().splitlines()
    assert f"{target} holds features of {(fixtures_dir / 'signer_58frames.mp4').resolve()}, not of {webm}" in line
    assert "--overwrite" in line and target.stat().st_mtime_ns == before
    # an unreadable output (a cut copy) is named, not skipped or crashed on
    broken = run["tmp"] / "broken_out"
    broken.mkdir()
    (broken / "signer_58frames.npz").write_bytes(target.read_bytes()[:500])
    rc, stdout, stderr = _cli("extract", webm, "--out", broken, "--no-features")
    (line,) = stderr.strip().splitlines()
    assert rc == 1 and str(broken / "signer_58frames.npz") in line and "--overwrite" in line
    assert "Traceback" not in stderr
    # the same source (given by a relative path from another folder) is still skipped
    import os

    here = os.getcwd()
    try:
        os.chdir(fixtures_dir)
        rc, stdout, _ = _cli("extract", "signer_58frames.mp4", "--out", run["out"], "--no-features")
    finally:
        os.chdir(here)
    assert rc == 0 and "1 skipped" in stdout
    # so is the same file of a dataset moved or mounted elsewhere (resuming on another machine)
    moved = run["tmp"] / "moved"
    moved.mkdir(exist_ok=True)
    shutil.copy(fixtures_dir / "signer_58frames.mp4", moved / "signer_58frames.mp4")
    rc, stdout, _ = _cli("extract", moved / "signer_58frames.mp4", "--out", run["out"], "--no-features")
    assert rc == 0 and "1 skipped" in stdout and target.stat().st_mtime_ns == before
    # but another video of the same name is not (train/0001.mp4 and test/0001.mp4 into one --out)
    other = run["tmp"] / "other"
    other.mkdir(exist_ok=True)
    shutil.copy(fixtures_dir / "real_formats" / "signer_rotated90.mp4", other / "signer_58frames.mp4")
    rc, stdout, stderr = _cli("extract", other / "signer_58frames.mp4", "--out", run["out"], "--no-features")
    assert rc == 1 and "0 skipped" in stdout and f"not of {other / 'signer_58frames.mp4'}" in stderr
    assert target.stat().st_mtime_ns == before


# --- symbolic links (C14): followed as `find -L` does; loops and broken links named -------------------------


def _c14_dataset(tmp_path, fixtures_dir):
    """`ds/`: `vid2/` (4 PNG frames), `vid1 -> ../store/vid1` (4 frames), `clips -> ../store/clips`
    (holds `x.mp4`), `c.mp4 -> ../store/c.mp4` (the C14 recipe, with small frames of the fixture)."""
    from media_helpers import write_video

    cap = cv2.VideoCapture(str(fixtures_dir / "signer_58frames.mp4"))
    frames = []
    for _ in range(4):
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.resize(bgr, (270, 360), interpolation=cv2.INTER_AREA))
    cap.release()
    store, ds = tmp_path / "store", tmp_path / "ds"
    for folder in (ds / "vid2", store / "vid1", store / "clips"):
        folder.mkdir(parents=True)
        for i, f in enumerate(frames):
            if folder.name != "clips":
                cv2.imwrite(str(folder / f"{i:04d}.png"), f)
    rgb = np.stack([f[..., ::-1] for f in frames])
    write_video(store / "clips" / "x.mp4", rgb)
    write_video(store / "c.mp4", rgb)
    (ds / "vid1").symlink_to("../store/vid1", target_is_directory=True)
    (ds / "clips").symlink_to("../store/clips", target_is_directory=True)
    (ds / "c.mp4").symlink_to("../store/c.mp4")
    return ds


def test_symlinked_frame_folders_clips_and_videos_are_extracted(tmp_path, fixtures_dir):
    ds = _c14_dataset(tmp_path, fixtures_dir)
    rc, stdout, stderr = _cli("extract", ds, "--out", tmp_path / "o", "--no-features")
    assert rc == 0, stderr
    assert "4 done, 0 skipped (already extracted), 0 failed; 16 frames" in stdout
    got = sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.npz"))
    assert got == ["c.npz", "clips/x.npz", "vid1.npz", "vid2.npz"]
    assert load_video_features(tmp_path / "o" / "vid1.npz")["keypoints"].shape == (4, 77, 3)


def test_link_loop_and_broken_link_are_named_once_and_the_rest_extracted(tmp_path, fixtures_dir):
    """Variant: a link back up the tree (`ds/clips/again -> ../..`) must not hang nor extract twice;
    a link to a clip that is gone fails that input by name; the others are extracted."""
    ds = _c14_dataset(tmp_path, fixtures_dir)
    (tmp_path / "store" / "clips" / "again").symlink_to("../../ds", target_is_directory=True)
    (ds / "gone.mp4").symlink_to("../store/gone.mp4")
    jobs = find_jobs([ds], tmp_path / "o")
    problems = [j.problem for j in jobs if j.problem is not None]
    assert [(p.path, p.kind) for p in problems] == [(ds / "gone.mp4", "broken"), (ds / "clips" / "again", "loop")]
    assert str(problems[0]) == f"{ds / 'gone.mp4'}: broken symbolic link (-> ../store/gone.mp4)"
    assert f"symbolic link loop (-> ../../ds, which is already {ds}); not entered again" in str(problems[1])
    rc, stdout, stderr = _cli("extract", ds, "--out", tmp_path / "o", "--no-features")
    assert rc == 1 and "4 done, 0 skipped (already extracted), 1 failed" in stdout
    assert stderr.count("gone.mp4: broken symbolic link") == 1 and stderr.count("symbolic link loop") == 1
    assert "note: " in stderr.split("symbolic link loop")[0].splitlines()[-1]
    assert stdout.count("gone.mp4") == 1  # listed once in the summary, its reason only above


def test_a_broken_frame_is_one_problem_of_its_clip(tmp_path, fixtures_dir):
    """A frame folder where one frame image is a broken link: the trial saw the frame dropped
    (the clip extracted one frame short, timing shifted, without a word) and the link counted as
    a failed input of its own. It is ONE input with one problem naming the frame: the clip is
    refused whole. Variants: the broken frame inside a linked frame folder (`vid1 -> store/vid1`);
    a broken hidden `._` companion is no frame and changes nothing; the frame count that
    `rvlf translate` and `rvlf data check` use refuses it the same way."""
    import json

    from rvlf.data.video import count_frames
    from rvlf.errors import InputFileError

    ds = _c14_dataset(tmp_path, fixtures_dir)
    (ds / "vid2" / "0002.png").unlink()
    (ds / "vid2" / "0002.png").symlink_to("../../gone/0002.png")
    (tmp_path / "store" / "vid1" / "0001.png").unlink()
    (tmp_path / "store" / "vid1" / "0001.png").symlink_to("/mnt/unmounted/0001.png")
    (ds / "clips" / "._x.png").symlink_to("nowhere")  # hidden: not a frame, ignored as before
    assert [j.source.name for j in find_jobs([ds], tmp_path / "o")] == ["c.mp4", "x.mp4", "vid1", "vid2"]
    rc, stdout, stderr = _cli("extract", ds, "--out", tmp_path / "o", "--no-features")
    assert rc == 1 and "2 done, 0 skipped (already extracted), 2 failed" in stdout, (stdout, stderr)
    for frame, target in ((ds / "vid1" / "0001.png", "/mnt/unmounted/0001.png"),
                          (ds / "vid2" / "0002.png", "../../gone/0002.png")):
        line = f"failed: {frame}: broken symbolic link (-> {target}): a frame of {frame.parent}, which is refused whole"
        assert stderr.count(line) == 1 and stderr.count(str(frame)) == 1, stderr
    assert not (tmp_path / "o" / "vid1.npz").exists() and not (tmp_path / "o" / "vid2.npz").exists()
    with pytest.raises(InputFileError, match="0002.png: broken symbolic link"):
        count_frames(ds / "vid2")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "v", "split": "train", "text": "a b", "lang": "en", "video": str(ds / "vid2")}))
    rc, stdout, stderr = _cli("data", "check", "--dataset", "manifest", "--root", manifest)
    assert rc == 2 and stderr.count("0002.png: broken symbolic link (-> ../../gone/0002.png)") == 1, (stdout, stderr)


# --- options and inputs checked before anything is made ---------------------------------------------------------


def test_bad_keypoints_dino_or_colliding_inputs_are_one_line_before_any_folder(fixtures_dir, tmp_path, monkeypatch):
    """`--keypoints nope/` failed once per video ("no keypoint file for ..."), or, for several videos, said "a
    single file needs a single video"; a bad `--dino` failed after `--out` was made, leaving an empty folder.
    Each is now one line before anything is read or made; no video is decoded (no MediaPipe run here)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub id below: the cache only, at once
    videos = [fixtures_dir / "signer_58frames.mp4", fixtures_dir / "real_formats" / "signer_rotated90.mp4"]
    kp = tmp_path / "kp"
    kp.mkdir()
    shutil.copy(fixtures_dir / "holistic_97frames.pose", kp / "another_clip.pose")  # a file for no input
    no_config = tmp_path / "dinov2"
    no_config.mkdir()
    (no_config / "model.safetensors").write_bytes(b"\0" * 8)
    out = tmp_path / "out"
    cases = [
        (["--keypoints", "nope/", "--no-features"], "--keypoints nope/: no such file or folder"),
        ([f"--keypoints={tmp_path / 'nope.pose'}"], f"--keypoints {tmp_path / 'nope.pose'}: no such file or folder"),
        (["--keypoints", kp, "--no-features"],  # the variant: the folder is there, but holds none of their files
         f"--keypoints {kp}: no keypoint file for any of the 2 input(s) to extract (looked for "
         "signer_58frames.{pose,npz,pkl}, signer_rotated90.{pose,npz,pkl}: a folder holds <name>.pose, .npz or "
         ".pkl per video)"),
        (["--dino", no_config], f"{no_config}: not a DINOv2 model folder: no config.json (give the folder that "
                                "holds its config.json and weights, or a hub id)"),
        (["--dino", "./dinov2-base"], "./dinov2-base: no such DINOv2 model folder (and not a hub id of the form "
                                      "owner/name, such as facebook/dinov2-base)"),
        (["--dino", "someone/dinov2-not-cached", "--device", "cpu"],  # a hub id: loaded (and refused) before --out
         "cannot load DINOv2 model 'someone/dinov2-not-cached'"),
    ]
    for options, says in cases:
        rc, stdout, err = _cli("extract", *videos, "--out", out, *options)
        assert (rc, stdout) == (2, ""), (options, err)
        assert err.startswith(f"rvlf extract: error: {says}") and err.count("\n") == 1, (options, err)
        assert not out.exists(), options
    # two inputs of one name would write one OUT/<name>.npz: named both, before anything (also from folders)
    webm = fixtures_dir / "real_formats" / "signer_58frames.webm"
    rc, _, err = _cli("extract", videos[0], webm, "--out", out, "--no-features")
    assert (rc, err) == (2, f"rvlf extract: error: {videos[0]} and {webm} would both be written to "
                            f"{out / 'signer_58frames.npz'} (an output is named after its input without the suffix): "
                            "extract them into different --out folders, or rename one\n")
    assert not out.exists()


def test_one_input_given_twice_is_one_job(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(fixtures_dir)
    jobs = find_jobs(["signer_58frames.mp4", "./signer_58frames.mp4", fixtures_dir / "signer_58frames.mp4"], tmp_path)
    assert [(j.source, j.out) for j in jobs] == [(Path("signer_58frames.mp4"), tmp_path / "signer_58frames.npz")]
