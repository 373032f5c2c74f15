"""Frame decoding: the real signer video, frame folders, single images and bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rvlf.data.video import FRAME_FOLDER_FPS, iter_frames, read_frames
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
    return {
        "empty.mp4": "empty",
        "text.mp4": "not a readable video",
        "truncated.mp4": "truncated",
        "broken.png": "not a readable image",
        "no_frames": "no frame images",
        "missing.mp4": "no such file",
    }


def test_bad_inputs_one_clear_line(tmp_path, fixtures_dir):
    for name, problem in _bad_inputs(tmp_path, fixtures_dir).items():
        with pytest.raises(InputFileError) as err:
            read_frames(tmp_path / name)
        msg = str(err.value)
        assert msg.startswith(str(tmp_path / name) + ":") and problem in msg and "\n" not in msg, msg


def test_folder_with_mixed_frame_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a2.png"), np.zeros((9, 8, 3), np.uint8))
    assert [f.shape for f in iter_frames(tmp_path)] == [(8, 8, 3), (9, 8, 3)]
    with pytest.raises(InputFileError, match="differ in size"):
        read_frames(tmp_path)
