"""1. Keypoints: `rvlf.data.extract.extract` (MediaPipe Holistic) on the fixture video, 1 and 2 workers. See
benchmarks/README.md."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.harness import VIDEO, Row, Section, Sizes, rates, timed


def run(sizes: Sizes, ctx: dict) -> Section:
    from rvlf.data.extract import Job, extract
    from rvlf.data.video import iter_frames

    sec = Section("1. Keypoints: MediaPipe Holistic on the fixture video")
    frames = sum(1 for _ in iter_frames(VIDEO))
    copies = 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = []
        for i in range(copies):
            v = tmp / f"v{i}{VIDEO.suffix}"
            v.symlink_to(VIDEO)
            videos.append(v)
        jobs = [Job(v, tmp / "out" / f"{v.stem}.npz") for v in videos]
        total = frames * copies

        def run(workers: int) -> None:
            summary = extract(jobs, encoder=None, workers=workers, overwrite=True, progress=False)
            if summary.failed or summary.frames != total:
                raise RuntimeError(f"extract failed: {summary.failed}")

        for workers in (1, 2):
            s = timed(lambda: run(workers), sizes)
            sec.rows.append(Row(f"extract, keypoints only, {workers} worker{'s' * (workers > 1)}", rates(total, s),
                                "frames/s", f"{copies} videos x {frames} frames"))
    from rvlf.data.video import video_fps

    sec.notes.append(
        f"`rvlf.data.extract.extract(jobs, encoder=None, workers=N, overwrite=True)` on {copies} copies of "
        f"`signer_58frames.mp4` ({frames} frames at {video_fps(VIDEO):.0f} fps): decode, MediaPipe Holistic "
        "(model_complexity 1, tracking mode), 77-point conversion, crop boxes, `.npz` write. With 2 workers each "
        "run starts a fresh spawn pool (MediaPipe and its models load in each worker), as one `rvlf extract` "
        "call does; over thousands of videos that start-up is paid once.")
    return sec
