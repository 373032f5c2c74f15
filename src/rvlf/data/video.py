"""Frame decoding: video files (PyAV; OpenCV when PyAV is not installed), folders of frame images, single images.

Frames are RGB `uint8 [H,W,3]`. `iter_frames` streams them (long videos need not fit in memory);
`read_frames` stacks them into `[T,H,W,3]`. Anything that cannot be decoded raises
`InputFileError` naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rvlf.errors import InputFileError

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# Frame folders carry no rate; PHOENIX-2014T (the main frame-folder dataset) is 25 fps.
FRAME_FOLDER_FPS = 25.0


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def _natural_key(path: Path) -> list:
    """Sort `frame2.png` before `frame10.png`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image(p)), key=_natural_key)


def read_image(path: str | Path) -> np.ndarray:
    """One image file -> RGB `uint8 [H,W,3]`."""
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
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputFileError(path, "no video stream")
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 0.0
    except ImportError:
        cap = cv2.VideoCapture(str(path))
        try:
            return float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
    except (OSError, ValueError) as err:  # av.error.FFmpegError subclasses these
        raise InputFileError(path, f"cannot open video ({_short(err)})") from None


def _short(err: Exception) -> str:
    return str(err).split(": '")[0].replace("[Errno ", "[").strip()


def _iter_pyav(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except (OSError, ValueError) as err:
        raise InputFileError(path, f"not a readable video ({_short(err)})") from None
    with container:
        if not container.streams.video:
            raise InputFileError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared, count = stream.frames, 0
        try:
            for frame in container.decode(stream):
                count += 1
                yield frame.to_ndarray(format="rgb24")
        except (OSError, ValueError) as err:
            raise InputFileError(path, f"corrupt or truncated video after {count} frames ({_short(err)})") from None
        if count == 0:
            raise InputFileError(path, "video has no frames")
        if declared and count < declared:
            raise InputFileError(path, f"truncated video: decoded {count} of {declared} frames")


def _iter_opencv(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
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
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Stream RGB frames of a video file, a folder of frame images, or a single image."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise InputFileError(path, "folder holds no frame images")
        for f in files:
            yield read_image(f)
    elif is_image(path):
        yield read_image(path)
    elif path.stat().st_size == 0:
        raise InputFileError(path, "empty file")
    elif _has_pyav():
        yield from _iter_pyav(path)
    else:
        yield from _iter_opencv(path)


def read_frames(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames as `uint8 [T,H,W,3]` RGB and the frame rate (see `video_fps`)."""
    frames = list(iter_frames(path))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputFileError(path, f"frames differ in size: {sorted(shapes)[:3]}")
    return np.stack(frames), video_fps(path)
