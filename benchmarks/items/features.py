"""9. Checking a feature set before step 1: header-only reads against full decoding, 20,000 files.

What runs: `rvlf.data.checks.check_feature_set` over N samples in PHOENIX-2014T's layout
(18/20 train, 1/20 dev, 1/20 test; videos `fullFrame-210x260px/SPLIT/ID`, features where
`rvlf extract` writes them, `FEATS/SPLIT/ID.npz`), exactly the check every stage runs before
step 1 (path lookup, zip directory and `.npy` headers, the set-level DINOv2 rules); against
`load_video_features` of the same N files, i.e. decoding every array (what checking by loading
would cost, and what `SignDataset` pays when it first reads a file). Both are timed in the same
run, alternating, and the ratio is taken per run pair; wall and CPU (process) seconds, as the
CPU time is what a loaded machine does not distort.

The files have the paper's shapes: keypoints float32 [T,77,3] and DINOv2-base float16 [T,3,768],
T uniform in 50..300 frames (the sequences are cut at 300), about 1 MB a file. To keep the disk
use at 200 distinct files (~200 MB) the N names are hard links to them (symlinks where hard links
fail); both readers open every name. The page cache is warm (the files were just written): the
figures are CPU cost; on a cold or network file system the full decode also reads ~1 MB a file
where the header check reads a few KB, so the gap is wider there. See benchmarks/README.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Row, Section, Sizes

DISTINCT = 200


def build(folder: Path, n_files: int, distinct: int, seed: int = 0) -> dict:
    """`distinct` feature files of the paper's shapes and `n_files` names for them; the split dict."""
    import numpy as np

    from rvlf.data.features import save_video_features
    from rvlf.data.readers import SignSample

    rng = np.random.default_rng(seed)
    store = folder / "distinct"
    feats = folder / "feats"
    store.mkdir(parents=True, exist_ok=True)
    feats.mkdir(parents=True, exist_ok=True)
    sources, frames = [], []
    for i in range(distinct):
        t = int(rng.integers(50, 301))
        kp = rng.uniform(0, 500, (t, 77, 3)).astype(np.float32)
        dino = rng.standard_normal((t, 3, 768)).astype(np.float16)
        sources.append(save_video_features(store / f"u{i}.npz", kp, dino, {"source": f"u{i}"}))
        frames.append(t)
    by_split: dict[str, list] = {"train": [], "dev": [], "test": []}
    frames_root = folder / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px"  # never created: only named
    for split in by_split:
        (feats / split).mkdir(exist_ok=True)
    for j in range(n_files):
        split = "dev" if j % 20 == 18 else "test" if j % 20 == 19 else "train"
        sid = f"s{j:05d}"
        name = feats / split / f"{sid}.npz"  # where `rvlf extract fullFrame-210x260px --out FEATS` puts it
        src = sources[j % distinct]
        try:
            os.link(src, name)
        except OSError:
            name.symlink_to(src)
        by_split[split].append(SignSample(id=sid, split=split, text="a b c", lang="de",
                                          video=frames_root / split / sid))
    mean_mb = sum(p.stat().st_size for p in sources) / len(sources) / 1e6
    return {"by_split": by_split, "feats": feats, "mean_frames": statistics.fmean(frames), "mean_mb": mean_mb}


def measure(n_files: int, runs: int, warmup: int = 1, distinct: int = DISTINCT) -> dict:
    """Wall and CPU seconds per run of the header-only check and of full decoding over `n_files` files."""
    from rvlf.data.checks import check_feature_set, sample_feature_file
    from rvlf.data.features import load_video_features

    tmp = Path(tempfile.mkdtemp(prefix="rvlf-bench-features-"))
    try:
        data = build(tmp, n_files, distinct)
        by_split, feats = data["by_split"], data["feats"]
        paths = [sample_feature_file(s, feats) for ss in by_split.values() for s in ss]

        def check() -> None:
            report = check_feature_set(by_split, feats)
            assert report.checked == n_files and not report.problems, report.problems[:3]

        def full() -> None:
            for p in paths:
                load_video_features(p)

        for _ in range(warmup):
            check()
        out: dict = {"check_s": [], "full_s": [], "check_cpu": [], "full_cpu": []}
        for _ in range(runs):
            for fn, key in ((check, "check"), (full, "full")):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                out[f"{key}_s"].append(time.perf_counter() - w0)
                out[f"{key}_cpu"].append(time.process_time() - c0)
        out.update(files=n_files, distinct=distinct, mean_frames=data["mean_frames"], mean_mb=data["mean_mb"],
                   ratio=[f / c for c, f in zip(out["check_s"], out["full_s"])],
                   ratio_cpu=[f / c for c, f in zip(out["check_cpu"], out["full_cpu"])])
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(sizes: Sizes, ctx: dict) -> Section:
    n = 2_000 if sizes.quick else 20_000
    m = measure(n, sizes.runs, sizes.warmup)
    sec = Section("9. Feature-set check before step 1: header-only against full decode")
    sec.rows.append(Row(f"check_feature_set, {n:,} files (header-only)", m["check_s"], "s", "wall"))
    sec.rows.append(Row("  the same, CPU time", m["check_cpu"], "s", "process time"))
    sec.rows.append(Row("  the same, per file", [1e3 * s / n for s in m["check_s"]], "ms", "wall"))
    sec.rows.append(Row(f"load_video_features of the same {n:,} files (full decode)", m["full_s"], "s", "wall"))
    sec.rows.append(Row("  the same, CPU time", m["full_cpu"], "s", "process time"))
    sec.rows.append(Row("full decode / header-only check", m["ratio"], "x", "wall, per run pair"))
    sec.rows.append(Row("full decode / header-only check, CPU time", m["ratio_cpu"], "x", "per run pair"))
    sec.notes.append(
        f"Files in PHOENIX-2014T's layout (FEATS/SPLIT/ID.npz): keypoints float32 [T,77,3] + DINOv2 float16 "
        f"[T,3,768], mean T {m['mean_frames']:.0f}, mean {m['mean_mb']:.2f} MB; {m['distinct']} distinct files "
        f"behind {n:,} names (hard links); warm page cache, so both figures are CPU cost. The check is what "
        "`rvlf.train.common.load_samples` runs before step 1 of every stage (path lookup, zip directory, `.npy` "
        "headers, DINOv2 rules); the full decode is `load_video_features` of every file.")
    return sec
