"""12. `rvlf extract` engines side by side: the local process pool (`--workers 2`) and Ray (`--engine ray`, a
local Ray cluster of this machine's CPUs), keypoints + crops + DINOv2 features of the fixture video. See
benchmarks/README.md."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.harness import VIDEO, Row, Section, Sizes


def run(sizes: Sizes, ctx: dict) -> Section:
    import ray

    from rvlf.data.extract import Job, extract
    from rvlf.data.extract_ray import extract_ray
    from rvlf.data.features import DinoEncoder, save_tiny_dinov2
    from rvlf.data.video import iter_frames

    cpus = os.cpu_count() or 1
    sec = Section(f"13. Extraction engines: local process pool against Ray on this machine ({cpus} CPUs)")
    frames = sum(1 for _ in iter_frames(VIDEO))
    copies = 2 if sizes.quick else 4
    runs = max(1, min(sizes.runs, 3))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dino = save_tiny_dinov2(tmp / "dino")  # a small random DINOv2: MediaPipe's share of the time, as on a GPU
        videos = []
        for i in range(copies):
            v = tmp / "videos" / f"v{i}{VIDEO.suffix}"
            v.parent.mkdir(exist_ok=True)
            v.symlink_to(VIDEO)
            videos.append(v)
        total = frames * copies
        encoder = DinoEncoder(str(dino), device="cpu", batch_size=32)
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        ray_start = time.perf_counter() - t0

        def jobs(out: Path) -> list[Job]:
            shutil.rmtree(out, ignore_errors=True)
            return [Job(v, out / f"{v.stem}.npz") for v in videos]

        def local() -> None:
            s = extract(jobs(tmp / "local"), encoder=encoder, workers=cpus, progress=False)
            if s.failed or s.frames != total:
                raise RuntimeError(f"local extract failed: {s.failed}")

        def on_ray() -> None:
            s = extract_ray(jobs(tmp / "ray"), str(dino), batch_size=32, progress=False)
            if s.failed or s.frames != total:
                raise RuntimeError(f"ray extract failed: {s.failed}")

        seconds: dict[str, list[float]] = {"local": [], "ray": []}
        try:
            for r in range(sizes.warmup + runs):  # interleaved: both engines see the same machine load
                for name, fn in (("local", local), ("ray", on_ray)):
                    t0 = time.perf_counter()
                    fn()
                    if r >= sizes.warmup:
                        seconds[name].append(time.perf_counter() - t0)
        finally:
            ray.shutdown()
    sec.rows += [
        Row(f"local pool, {cpus} workers + DINOv2 in the main process", [total / s for s in seconds["local"]],
            "frames/s", f"{copies} videos x {frames} frames"),
        Row(f"Ray, {cpus} CPUs: MediaPipe tasks + 1 DINOv2 actor", [total / s for s in seconds["ray"]], "frames/s",
            f"{copies} videos x {frames} frames"),
        Row("Ray / local (frames/s)", [a / b for a, b in zip(seconds["local"], seconds["ray"])], "x",
            "per run pair; below 1 = Ray slower"),
        Row("Ray cluster start (ray.init, local, once per job)", [ray_start], "s"),
    ]
    sec.notes.append(
        f"The same {copies} videos (symlinks to `signer_58frames.mp4`, {frames} frames) through "
        f"`rvlf.data.extract.extract(workers={cpus})` and `rvlf.data.extract_ray.extract_ray` (a local Ray cluster "
        f"started once with num_cpus={cpus}), a tiny random DINOv2 (hidden 32) so that MediaPipe dominates as it "
        "does with DINOv2-base on a GPU. Each run: decode, MediaPipe Holistic, crops, DINOv2, `.npz` writes, "
        "from an empty output folder; the local pool and Ray's actor start anew in every run, as one "
        "`rvlf extract` call does. One machine is where Ray can only match the pool: its gain is more nodes "
        f"(MediaPipe about 19 frames/s per core, item 1), each adding its cores' tasks and its GPU's actor.")
    return sec
