"""Files that are not videos say what they are (whatever their names), in `rvlf translate`,
`rvlf extract`, the app and the API (`rvlf.data.video.not_a_video`)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import cli_output
from rvlf.data.video import not_a_video
from rvlf.errors import InputFileError


def test_translate_on_text_and_array_files_says_what_they_are(tiny_grpo_run, tmp_path):
    """The issue's recipe: a plain text file ("no signer found" when FFmpeg played it as ANSI art)
    and a `.npy` keypoint array; variant: the same without suffixes and a text saved as `.mp4`."""
    np.save(tmp_path / "kp.npy", np.ones((10, 77, 3), np.float32))
    (tmp_path / "kp.npy").rename(tmp_path / "keypoints")                 # a .npy without its suffix
    np.save(tmp_path / "kp.npy", np.ones((10, 77, 3), np.float32))
    text = "Guten Abend, liebe Zuschauer.\nDas Wetter morgen: Regen im Süden.\n" * 40
    for name in ("notes.txt", "transcript", "clip.mp4"):
        (tmp_path / name).write_text(text, encoding="utf-8")
    inputs = ["notes.txt", "transcript", "clip.mp4", "kp.npy", "keypoints"]
    rc, out, err = cli_output("translate", *(tmp_path / n for n in inputs), "--checkpoint", tiny_grpo_run / "best",
                              "--device", "cpu")
    lines = err.strip().splitlines()
    assert rc != 0 and out == ""
    for name in ("notes.txt", "transcript", "clip.mp4"):
        assert f"rvlf translate: failed: {tmp_path / name}: a text file, not a video" in lines
    for name in ("kp.npy", "keypoints"):
        assert any(line.startswith(f"rvlf translate: failed: {tmp_path / name}: a bare NumPy array, not a video: "
                                   "rvlf reads keypoints from .npz (key 'keypoints'") for line in lines), lines
    assert "no signer" not in err


@pytest.mark.parametrize("content, what", [
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "a PDF document, not a video"),
    (b"PK\x03\x04\x14\x00\x00\x00", "a zip archive, not a video"),
    (b"\x1f\x8b\x08\x00", "a gzip-compressed file, not a video"),
    ("Zeile mit Umlauten äöü und 手语\r\n".encode() * 200, "a text file, not a video"),
])
def test_other_files_named_as_videos_are_named_by_content(tmp_path, content, what):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=what):
        not_a_video(path)


def test_real_videos_and_images_pass(fixtures_dir):
    for name in ("signer_58frames.mp4", "real_formats/signer_58frames.webm", "human_all_parts.png"):
        not_a_video(fixtures_dir / name)   # no error
