"""Frame decoding: the real signer video, frame folders, single images and bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rvlf.data.video import FRAME_FOLDER_FPS, count_frames, iter_frames, read_frames
from rvlf.errors import InputFileError


@pytest.fixture(scope="module")
def signer(fixtures_dir):
    return read_frames(fixtures_dir / "signer_58frames.mp4")


def test_video_all_frames_rgb(signer):
    frames, fps = signer
    assert frames.shape == (58, 720, 540, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(29.92, abs=0.05)
    assert len(np.unique(frames.reshape(58, -1)[:, ::997], axis=0)) > 50  # distinct frames, not one repeated


def test_video_matches_opencv_rgb(fixtures_dir, signer):
    cap = cv2.VideoCapture(str(fixtures_dir / "signer_58frames.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    # both decoders see the same picture; ours is RGB
    diff = np.abs(signer[0][0].astype(int) - bgr[..., ::-1].astype(int)).mean()
    assert diff < 3.0


def test_frame_folder_natural_order(tmp_path, signer):
    frames = signer[0]
    for name, i in (("f10.png", 2), ("f2.png", 1), ("f1.png", 0)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[i * 20], cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("ignored")
    out, fps = read_frames(tmp_path)
    assert out.shape == (3, 720, 540, 3) and fps == FRAME_FOLDER_FPS
    np.testing.assert_array_equal(out, frames[[0, 20, 40]])  # PNG is lossless


def test_single_image(fixtures_dir):
    frames, fps = read_frames(fixtures_dir / "human_all_parts.png")
    assert frames.shape == (1, 1928, 1928, 3) and fps == 0.0


def _bad_inputs(tmp_path, fixtures_dir):
    data = (fixtures_dir / "signer_58frames.mp4").read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 20)
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (tmp_path / "no_frames").mkdir()
    # FFmpeg's "tty" demuxer plays a long text file as ANSI-art frames (then "no signer found")
    (tmp_path / "transcript.txt").write_text("".join(f"line {i} of a transcript\n" for i in range(600)))
    (tmp_path / "numbers.dat").write_text("".join(f"{i}\n" for i in range(500)))  # av.error.EOFError (no OSError)
    (tmp_path / "garbage.mp4").write_bytes(bytes(range(256)) * 8)  # binary, no known magic: for the decoder
    np.save(tmp_path / "keypoints.npy", np.zeros((10, 77, 3), np.float32))
    return {
        "transcript.txt": "a text file, not a video",
        "numbers.dat": "a text file, not a video",  # told by its content, whatever its name
        "garbage.mp4": "not a readable video",
        "keypoints.npy": "a bare NumPy array, not a video: rvlf reads keypoints from .npz",
        "empty.mp4": "empty",
        "text.mp4": "a text file, not a video",
        "truncated.mp4": "truncated",
        "broken.png": "not a readable image",
        "no_frames": "no frame images",
        "missing.mp4": "no such file",
    }


def test_bad_inputs_one_clear_line(tmp_path, fixtures_dir):
    for name, problem in _bad_inputs(tmp_path, fixtures_dir).items():
        # decoding and counting (rvlf data check) say the same; an image counts 1 unread
        for read in (read_frames,) if name.endswith(".png") else (read_frames, count_frames):
            with pytest.raises(InputFileError) as err:
                read(tmp_path / name)
            msg = str(err.value)
            assert msg.startswith(str(tmp_path / name) + ":") and problem in msg and "\n" not in msg, (read, msg)


def test_folder_with_mixed_frame_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a2.png"), np.zeros((9, 8, 3), np.uint8))
    assert [f.shape for f in iter_frames(tmp_path)] == [(8, 8, 3), (9, 8, 3)]
    with pytest.raises(InputFileError, match="differ in size"):
        read_frames(tmp_path)


# --- real encoder outputs: display rotation, missing / overcounted frame counts, macOS copies -------------------


def test_rotated_phone_video_is_upright_in_both_backends(fixtures_dir, signer):
    """The frames are stored sideways (720x540) with a 90-degree display matrix: PyAV and OpenCV
    both give the upright 540x720 picture, the same one as the unrotated original."""
    import av

    from rvlf.data.video import _iter_opencv, _iter_pyav, display_rotation

    path = fixtures_dir / "real_formats" / "signer_rotated90.mp4"
    with av.open(str(path)) as c:
        raw = next(c.decode(video=0))
        assert (raw.width, raw.height) == (720, 540)                    # stored sideways
    pyav, opencv = np.stack(list(_iter_pyav(path))), np.stack(list(_iter_opencv(path)))
    assert pyav.shape == opencv.shape == (58, 720, 540, 3)
    assert np.abs(pyav.astype(int) - opencv.astype(int)).mean() < 1.0    # one picture, not two
    # upright: the re-encoded frames match the original's (a sideways frame could not even be compared)
    assert np.abs(pyav[::10].astype(int) - signer[0][::10].astype(int)).mean() < 6.0
    assert display_rotation(path) == 90 and display_rotation(fixtures_dir / "signer_58frames.mp4") == 0


def test_webm_without_frame_count_is_counted_by_decoding(fixtures_dir):
    import av

    from rvlf.data.video import count_frames

    path = fixtures_dir / "real_formats" / "signer_58frames.webm"
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 0                           # the container declares nothing
    assert count_frames(path) == 58 == len(list(iter_frames(path)))


def test_edit_listed_mp4_gives_the_frames_that_play(tmp_path, fixtures_dir, signer):
    """An MP4 cut by stream copy keeps every packet and hides the first 13 behind an edit list:
    its header counts 58 frames, 45 play. Both backends and `count_frames` give those 45."""
    import av

    from media_helpers import cut_with_edit_list
    from rvlf.data.video import _iter_opencv, count_frames

    cut = cut_with_edit_list(fixtures_dir / "signer_58frames.mp4", tmp_path / "cut.mp4", skip=13)
    assert b"elst" in cut.read_bytes()
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 58                          # the header overcounts
    frames, _ = read_frames(cut)
    assert frames.shape == (45, 720, 540, 3) and count_frames(cut) == 45
    np.testing.assert_array_equal(frames, signer[0][13:])               # exactly the frames after the cut
    assert len(list(_iter_opencv(cut))) == 45


def test_half_written_mp4_is_still_truncated(tmp_path, fixtures_dir):
    from rvlf.data.video import count_frames

    data = (fixtures_dir / "signer_58frames.mp4").read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    for fn in (count_frames, read_frames):
        with pytest.raises(InputFileError, match=r"half\.mp4: truncated video: its header lists 58 frames"):
            fn(tmp_path / "half.mp4")


def test_frame_folder_copied_from_a_mac(fixtures_dir):
    """AppleDouble `._00001.jpg` companions and `.DS_Store` are not frames."""
    from rvlf.data.video import count_frames, frame_files

    folder = fixtures_dir / "real_formats" / "frames_macos_copy"
    assert any(p.name.startswith("._") for p in folder.iterdir())
    assert [p.name for p in frame_files(folder)] == [f"{i:05d}.jpg" for i in range(1, 7)]
    frames, fps = read_frames(folder)
    assert frames.shape == (6, 360, 270, 3) and count_frames(folder) == 6 and fps == FRAME_FOLDER_FPS
