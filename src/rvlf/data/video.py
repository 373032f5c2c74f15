"""Frame decoding: video files (PyAV; OpenCV when PyAV is not installed), folders of frame images, single images.

Frames are RGB `uint8 [H,W,3]`, upright as a player shows them: a video's display matrix (phone
recordings store frames sideways and say "turn 90 degrees") is applied, by both backends.
`iter_frames` streams them (long videos need not fit in memory); `read_frames` stacks them into
`[T,H,W,3]`; `count_frames` counts them by decoding, the one frame count used by `rvlf extract`,
`rvlf translate` and `rvlf data check` (container headers can lack a count, as WebM does, or
count more frames than play, as an MP4 cut with an edit list does). In a frame folder, names
starting with `.` (macOS `._*` AppleDouble companions, `.DS_Store`) are never frames.
Anything that cannot be decoded raises `InputFileError` naming the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rvlf.data.walk import dangling_link
from rvlf.errors import InputFileError, RvlfError

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# Frame folders carry no rate; PHOENIX-2014T (the main frame-folder dataset) is 25 fps.
FRAME_FOLDER_FPS = 25.0


# Files given by mistake where a video belongs, and what to say: FFmpeg opens almost anything (its
# "tty" demuxer plays a long text file as frames of ANSI art, which then has "no signer").
_TEXT_EXTS = frozenset({".txt", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".md", ".srt", ".vtt", ".xml"})
NOT_A_VIDEO = {
    ".npy": "a bare NumPy array, not a video: rvlf reads keypoints from .npz (key 'keypoints', [T,77,3]: "
            "numpy.savez(FILE.npz, keypoints=ARRAY)), .pose or .pkl files",
    **{ext: "a text file, not a video" for ext in _TEXT_EXTS},
}


# what a file's first bytes say it is, whatever its name (a text file saved as clip.mp4, a NumPy
# array without its suffix): (magic, what to say)
_MAGIC = (
    (b"\x93NUMPY", NOT_A_VIDEO[".npy"]),
    (b"%PDF", "a PDF document, not a video"),
    (b"PK\x03\x04", "a zip archive, not a video (unzip frame images into a folder and give the folder; "
                     "rvlf app takes such zips)"),
    (b"\x1f\x8b", "a gzip-compressed file, not a video (label files go to data.root, not to translate/extract)"),
)


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 text without NUL bytes or control characters other than whitespace (a video never is)."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: err.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\f\v" for c in text.lstrip("\ufeff"))


def not_a_video(path: Path) -> None:
    """Raise `InputFileError` for a file whose name (`NOT_A_VIDEO`) or first bytes say it is not a
    video: text (whatever its suffix), a NumPy `.npy` array, a PDF, a zip or gzip file."""
    reason = NOT_A_VIDEO.get(path.suffix.lower())
    if reason and path.is_file():
        raise InputFileError(path, reason)
    if not path.is_file() or is_image(path):
        return
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return  # the decoder names the problem
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InputFileError(path, what)
    if _looks_like_text(head):
        raise InputFileError(path, NOT_A_VIDEO[".txt"])


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def _natural_key(path: Path) -> list:
    """Sort `frame2.png` before `frame10.png`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def is_frame_file(path: Path) -> bool:
    """An image file that can be a frame: hidden names (`._00001.jpg` AppleDouble companions
    written by macOS copies, `.DS_Store`) never are."""
    return not path.name.startswith(".") and is_image(path) and path.is_file()


def frame_files(folder: str | Path) -> list[Path]:
    """The frame images directly in `folder` (see `is_frame_file`), in natural order.

    A frame name that is a broken symbolic link (or a link loop) raises `InputFileError` naming
    that frame and its target: the clip is one input with one problem, refused whole, since
    leaving the frame out would shift the timing of every later frame (restore the frame, or
    remove the link to read the clip without it)."""
    frames = []
    for p in Path(folder).iterdir():
        if is_frame_file(p):
            frames.append(p)
        elif not p.name.startswith(".") and is_image(p) and p.is_symlink() and not p.exists():
            raise InputFileError(p, f"broken symbolic link (-> {_link_target(p)}): a frame of {p.parent}, which is "
                                    "refused whole (a missing frame would shift its timing); restore the frame, or "
                                    "remove the link to read the clip without it")
    return sorted(frames, key=_natural_key)


def _link_target(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return "?"


def read_image(path: str | Path) -> np.ndarray:
    """One image file -> RGB `uint8 [H,W,3]`."""
    import cv2  # OpenCV deferred on purpose: `rvlf data check` and --help need no decoder

    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise InputFileError(path, "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def video_fps(path: str | Path) -> float:
    """Frame rate of a video file, a frame folder (`FRAME_FOLDER_FPS`) or an image (0)."""
    path = Path(path)
    if path.is_dir():
        return FRAME_FOLDER_FPS
    if is_image(path):
        return 0.0
    try:
        import av  # PyAV deferred on purpose: `rvlf data check` and --help need no decoder

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputFileError(path, "no video stream")
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 0.0
    except ImportError:
        import cv2  # OpenCV deferred on purpose: `rvlf data check` and --help need no decoder

        cap = cv2.VideoCapture(str(path))
        try:
            return float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
    except _av_errors() as err:
        raise InputFileError(path, f"cannot open video ({_short(err)})") from None


def _av_errors() -> tuple[type[BaseException], ...]:
    """What opening or decoding a file with PyAV raises for a file it cannot read: OSError,
    ValueError and every `av.error.FFmpegError` (some, such as `av.error.EOFError`, are neither)."""
    try:
        import av  # PyAV deferred on purpose: `rvlf data check` and --help need no decoder
    except ImportError:
        return (OSError, ValueError)
    return (OSError, ValueError, av.error.FFmpegError)


def _short(err: Exception) -> str:
    return str(err).split(": '")[0].replace("[Errno ", "[").strip()


def frame_rotation(frame) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) that turn a decoded PyAV frame upright: its
    display matrix's rotation, rounded to a quarter turn (as OpenCV does; mirroring is ignored)."""
    degrees = getattr(frame, "rotation", None)
    if degrees is None:  # PyAV < 14: read the DISPLAYMATRIX side data (av_display_rotation_get)
        degrees = 0.0
        for side in getattr(frame, "side_data", ()):
            if str(getattr(side, "type", "")).endswith("DISPLAYMATRIX"):
                m = np.frombuffer(bytes(side), dtype=np.int32)[:9].astype(np.float64) / 65536.0
                s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
                if s0 and s1:
                    degrees = -math.degrees(math.atan2(m[1] / s1, m[0] / s0))
    return (int(round(float(degrees) / 90.0)) % 4) * 90


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn `[H,W,C]` counter-clockwise by `rotation` degrees (a multiple of 90)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _decode_pyav(path: Path) -> Iterator:
    """Decoded PyAV frames of the first video stream, in display order.

    Frames an MP4 edit list hides are dropped by FFmpeg (the packets are flagged `discard`), so
    a header that counts more frames than play is not an error; a file that holds fewer packets
    than its header lists is (it was cut short)."""
    import av  # PyAV deferred on purpose: `rvlf data check` and --help need no decoder

    errors = _av_errors()
    try:
        container = av.open(str(path))
    except errors as err:
        raise InputFileError(path, f"not a readable video ({_short(err)})") from None
    with container:
        if container.format.name == "tty":  # FFmpeg's text demuxer: a text file shown as ANSI art
            raise InputFileError(path, NOT_A_VIDEO[".txt"])
        if not container.streams.video:
            raise InputFileError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared, packets, count = stream.frames, 0, 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                for frame in packet.decode():
                    count += 1
                    yield frame
        except errors as err:
            raise InputFileError(path, f"corrupt or truncated video after {count} frames ({_short(err)})") from None
        if count == 0:
            raise InputFileError(path, "video has no frames")
        if declared and packets < declared:
            raise InputFileError(path, f"truncated video: its header lists {declared} frames but the file holds "
                                       f"{packets} ({count} decoded)")


def _iter_pyav(path: Path) -> Iterator[np.ndarray]:
    for frame in _decode_pyav(path):
        yield upright(frame.to_ndarray(format="rgb24"), frame_rotation(frame))


def _iter_opencv(path: Path) -> Iterator[np.ndarray]:
    import cv2  # OpenCV deferred on purpose: `rvlf data check` and --help need no decoder

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # apply the display matrix (OpenCV's default; made explicit)
    try:
        if not cap.isOpened():
            raise InputFileError(path, "not a readable video")
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if count == 0:
            raise InputFileError(path, "video has no frames")
    finally:
        cap.release()


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401 - the import is the check (and PyAV stays out of start-up)
    except ImportError:
        return False
    return True


def _no_frames(folder: Path) -> str:
    """Why a folder is no video: no frame images, and what it holds instead when that says more."""
    videos = sorted(p.name for p in folder.iterdir() if p.is_file() and is_video(p))
    if videos:
        kinds = sorted({Path(v).suffix for v in videos})
        pattern = f"{folder}/*{kinds[0]}" if len(kinds) == 1 else f"{folder}/*.{{{','.join(k[1:] for k in kinds)}}}"
        return (f"folder holds no frame images but {len(videos)} video file(s) ({', '.join(videos[:3])}"
                f"{', ...' if len(videos) > 3 else ''}): give the videos themselves (e.g. {pattern})")
    return "folder holds no frame images"


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Stream RGB frames of a video file, a folder of frame images, or a single image."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, dangling_link(path) or "no such file or folder")
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise InputFileError(path, _no_frames(path))
        for f in files:
            yield read_image(f)
    elif is_image(path):
        yield read_image(path)
    else:
        yield from _iter_video_file(path)


def _iter_video_file(path: Path) -> Iterator[np.ndarray]:
    not_a_video(path)
    if path.stat().st_size == 0:
        raise InputFileError(path, "empty file")
    if _has_pyav():
        yield from _iter_pyav(path)
    else:
        yield from _iter_opencv(path)


def count_frames(path: str | Path) -> int:
    """Frames `iter_frames` yields, counted by decoding a video (never from its header), by
    listing a frame folder (`frame_files`), or 1 for an image. Raises as `iter_frames` does."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    if path.is_dir():
        n = len(frame_files(path))
        if n == 0:
            raise InputFileError(path, _no_frames(path))
        return n
    if is_image(path):
        return 1
    not_a_video(path)
    if path.stat().st_size == 0:
        raise InputFileError(path, "empty file")
    if _has_pyav():
        return sum(1 for _ in _decode_pyav(path))
    return sum(1 for _ in _iter_opencv(path))


def display_rotation(path: str | Path) -> int:
    """Degrees (0, 90, 180, 270) the first frame of a video is turned to show it upright; 0 for
    frame folders, images and without PyAV (OpenCV applies it without saying)."""
    path = Path(path)
    if path.is_dir() or is_image(path) or not _has_pyav():
        return 0
    for frame in _decode_pyav(path):
        return frame_rotation(frame)
    return 0


def read_frames(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames as `uint8 [T,H,W,3]` RGB and the frame rate (see `video_fps`)."""
    frames = list(iter_frames(path))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputFileError(path, f"frames differ in size: {sorted(shapes)[:3]}")
    return np.stack(frames), video_fps(path)


def _even(n: int) -> int:
    return max(2, n - n % 2)


def write_browser_video(frames, fps: float, out: Path) -> Path:
    """RGB frames `uint8 [H,W,3]` -> a video every browser plays: H.264 (yuv420p, faststart) in mp4
    through PyAV, else VP9 in WebM. Returns the path written (its suffix tells the format)."""
    import av  # PyAV deferred on purpose: `rvlf data check` and --help need no decoder

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise RvlfError("no frames to draw")
    h, w = _even(first.shape[0]), _even(first.shape[1])
    for codec, suffix, options in (("libx264", ".mp4", {"crf": "23", "preset": "veryfast"}),
                                   ("libvpx-vp9", ".webm", {"crf": "32", "b": "0", "deadline": "realtime"})):
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - this PyAV build lacks the encoder: try the next one
            continue
        path = out.with_suffix(suffix)
        with av.open(str(path), "w", options={"movflags": "faststart"} if suffix == ".mp4" else {}) as container:
            stream = container.add_stream(codec, rate=int(round(fps)) or 25, options=options)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for frame in (first, *frames):
                img = np.ascontiguousarray(frame[:h, :w])
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path
    raise RvlfError("this PyAV build has neither an H.264 nor a VP9 encoder")
