"""What `rvlf app` does with an upload (`rvlf.inference.app.process`), without a browser: frame-folder zips
(the real macOS-copied folder), keypoint files, videos browsers play, clear errors."""

from __future__ import annotations

import shutil
import zipfile

import av
import numpy as np
import pytest

from rvlf import SignTranslator
from rvlf.inference.app import build_app, process, write_browser_video


@pytest.fixture(scope="module")
def translator(tiny_grpo_run):
    return SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")


def _zip_folder(folder, archive):
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return archive


def _codec(path) -> tuple[str, int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in c.decode(stream))


def test_a_zip_of_frames_copied_from_a_mac(translator, fixtures_dir, tmp_path):
    folder = fixtures_dir / "real_formats" / "frames_macos_copy"  # 6 frames + ._ AppleDouble files + .DS_Store
    archive = _zip_folder(folder, tmp_path / "frames.zip")
    res = process(translator, archive, num_beams=3, workdir=tmp_path / "work")
    assert not res.error, res.status
    assert "6 frames" in res.status and "frames.zip" in res.status
    clean = tmp_path / "frames"  # the six frames alone, as the app unpacks them
    clean.mkdir()
    for f in folder.glob("[!.]*.jpg"):
        shutil.copy(f, clean / f.name)
    expected = translator.translate(clean, num_beams=3, return_scores=True)
    assert res.translation == expected[0].text
    assert [row[1] for row in res.nbest] == [h.text for h in expected]
    assert [part for part, _ in res.timings][0] == "unpacking the zip"
    assert _codec(res.video) == ("h264", 6)


def test_a_keypoint_file_is_drawn_as_a_skeleton(translator, fixtures_dir, tmp_path):
    pose = fixtures_dir / "holistic_97frames.pose"
    res = process(translator, pose, num_beams=2, workdir=tmp_path)
    assert not res.error and res.translation == translator.translate(pose, num_beams=2)
    assert res.timings[0][0] == "reading the keypoint file"
    assert {p for p, _ in res.timings} >= {"translation (beam search, width 2)", "drawing keypoints and crop boxes",
                                           "total"}
    assert _codec(res.video) == ("h264", 97)


@pytest.mark.parametrize("name, content, problem", [
    ("notes.txt", b"meeting notes\n", "a text file, not a video"),
    ("clip.mp4", b"\x00\x01 not really an mp4", "not a readable video"),
    ("frames.zip", b"PK\x03\x04 torn", "not a readable zip file"),
    ("keypoints.pose", b"\x00" * 64, "keypoints.pose"),
])
def test_files_it_cannot_read_get_one_line(translator, tmp_path, name, content, problem):
    path = tmp_path / "upload" / name
    path.parent.mkdir()
    path.write_bytes(content)
    res = process(translator, path, workdir=tmp_path / "work")
    assert res.error and res.status.startswith(f"**Cannot read `{name}`**")
    assert problem in res.status and str(path.parent) not in res.status and "\n" not in res.status
    assert res.translation == "" and res.video is None


def test_a_video_without_a_signer_is_not_translated(translator, tmp_path):
    from media_helpers import blank_video

    video = blank_video(tmp_path / "empty_room.mp4")
    res = process(translator, video, workdir=tmp_path / "work")
    assert res.error and res.translation == "" and res.nbest == []
    assert res.status.startswith("**No signer found in `empty_room.mp4`**") and "12 frames" in res.status
    assert _codec(res.video)[0] == "h264"  # the video is still shown


def test_a_zip_without_frames(translator, tmp_path):
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("docs/readme.txt", "hello")
        zf.writestr("__MACOSX/docs/._a.png", "resource fork")
    res = process(translator, archive, workdir=tmp_path / "work")
    assert res.error and "no frame images" in res.status


def _frames_zip(archive, frames, compression=zipfile.ZIP_STORED, folder="frames"):
    with zipfile.ZipFile(archive, "w", compression) as zf:
        for i, f in enumerate(frames):
            zf.write(f, f"{folder}/{i:04d}{f.suffix}")
    return archive


def _damage(archive, member: int, offset: int, count: int = 1):
    """Flip `count` bytes of member `member`'s stored data, from `offset` into it."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[member]
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(count):
        data[start + offset + k] ^= 0xFF
    archive.write_bytes(bytes(data))
    return info.filename


def _mac_frames(fixtures_dir):
    return sorted((fixtures_dir / "real_formats" / "frames_macos_copy").glob("[!.]*.jpg"))


def test_a_zip_with_a_corrupt_member_names_it(translator, fixtures_dir, tmp_path):
    """C5: a stored zip with one byte of member 3 flipped (bad CRC-32) and a deflated one with 8
    bytes of member 2 garbled: one line naming the zip and the member, no internal error."""
    frames = _mac_frames(fixtures_dir)
    crc = _frames_zip(tmp_path / "crc.zip", frames)
    name = _damage(crc, 2, 200)
    res = process(translator, crc, workdir=tmp_path / "work")
    assert res.error and res.status.startswith(f"**Cannot read `crc.zip`**: member '{name}' cannot be read: Bad CRC-32")
    assert "Internal error" not in res.status and "\n" not in res.status and str(tmp_path) not in res.status
    bad = _frames_zip(tmp_path / "deflate_bad.zip", frames, zipfile.ZIP_DEFLATED)
    name = _damage(bad, 1, 40, 8)
    res = process(translator, bad, workdir=tmp_path / "work")
    assert res.error and res.status.startswith(f"**Cannot read `deflate_bad.zip`**: member '{name}' cannot be read")
    assert "Internal error" not in res.status


def test_a_zip_member_in_an_unsupported_compression_names_it(translator, fixtures_dir, tmp_path):
    """Variant: a member compressed with Deflate64 (method 9, what Windows writes for large zips),
    which Python's zipfile cannot read."""
    archive = _frames_zip(tmp_path / "win.zip", _mac_frames(fixtures_dir)[:2], zipfile.ZIP_DEFLATED)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        second = zf.infolist()[1]
    data[second.header_offset + 8] = 9                      # the local header's compression method
    central = data.rfind(b"PK\x01\x02")                    # the last central directory entry: member 2
    data[central + 10] = 9
    archive.write_bytes(bytes(data))
    res = process(translator, archive, workdir=tmp_path / "work")
    assert res.error and res.status.startswith(f"**Cannot read `win.zip`**: member '{second.filename}' cannot be read")
    assert "compression" in res.status


def test_a_zip_with_nested_folders_reads_the_largest_and_skips_macosx(translator, fixtures_dir, tmp_path):
    """As docs/sharing.md says: the folder with the most images (`clip/part_b/`, 4 frames, not
    `clip/part_a/`, 2), `__MACOSX/` and hidden files skipped."""
    frames = _mac_frames(fixtures_dir)
    archive = tmp_path / "nested.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, f in enumerate(frames[:2]):
            zf.write(f, f"clip/part_a/{i:04d}.jpg")
        for i, f in enumerate(frames[2:6]):
            zf.write(f, f"clip/part_b/{i:04d}.jpg")
            zf.writestr(f"__MACOSX/clip/part_b/._{i:04d}.jpg", b"\x00\x05\x16\x07 resource fork")
            zf.writestr(f"__MACOSX/clip/part_c/{i:04d}.jpg", b"not an image")
    res = process(translator, archive, num_beams=2, workdir=tmp_path / "work")
    assert not res.error, res.status
    assert res.status.startswith("**nested.zip**: 4 frames")


def test_browser_video_is_h264_with_even_sides(tmp_path):
    frames = (np.random.default_rng(0).integers(0, 255, size=(5, 71, 33, 3))).astype(np.uint8)
    path = write_browser_video(iter(frames), 25.0, tmp_path / "v")
    assert path.suffix == ".mp4"
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height) == ("h264", 32, 70)


def test_page_is_offline_by_construction(translator, monkeypatch):
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    blocks, theme, css = build_app(translator)
    import os

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and blocks.analytics_enabled is False
    # system fonts only: no font the browser would fetch (the browser test checks every request)
    assert all(isinstance(f, str) or type(f).__name__ == "Font" for f in theme._font + theme._font_mono)
