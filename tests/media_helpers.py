"""Videos the tests make from the real fixtures with PyAV (there is no ffmpeg binary here).

`cut_with_edit_list` is what `ffmpeg -ss T -i in.mp4 -c copy out.mp4` does to an H.264 MP4 whose
cut point is not a keyframe: every packet is copied unchanged, timestamps are shifted so the
frames before the cut get negative times, and FFmpeg's own MP4 muxer (libavformat's movenc,
the same code ffmpeg uses) then writes an edit list (`elst`) that hides them. The header's
sample table still counts every copied frame; players show only those after the cut.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def cut_with_edit_list(src: Path, out: Path, skip: int) -> Path:
    """Stream-copy `src` into `out`, hiding its first `skip` frames behind an MP4 edit list."""
    import av

    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        packets = [p for p in inp.demux(stream) if p.size]
        offset = sorted(p.pts for p in packets)[skip]
        for p in packets:
            p.pts -= offset
            p.dts -= offset
            p.stream = copy
            dst.mux(p)
    return out


def write_video(out: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """Encode RGB `uint8 [T,H,W,3]` as H.264 (yuv420p) with PyAV."""
    import av

    with av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=Fraction(fps, 1))
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                dst.mux(pkt)
        for pkt in s.encode():
            dst.mux(pkt)
    return out


def blank_video(out: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip with nobody in it: mid-grey frames, `size` = (W, H)."""
    return write_video(out, np.full((frames, size[1], size[0], 3), 128, np.uint8))


def write_y4m(src: Path, out: Path) -> Path:
    """Decode `src` with PyAV into an uncompressed YUV4MPEG2 (.y4m, 4:2:0) file: what Chromium's fake
    camera plays (`--use-file-for-fake-video-capture`), looping, at 25 frames/s."""
    import av

    with av.open(str(src)) as container, open(out, "wb") as f:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 0:
                f.write(f"YUV4MPEG2 W{frame.width} H{frame.height} F25:1 Ip A1:1 C420jpeg\n".encode())
            f.write(b"FRAME\n" + frame.to_ndarray(format="yuv420p").tobytes())
    return out
