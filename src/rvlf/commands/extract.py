"""`rvlf extract`: keypoints, hand/face crops and DINOv2 features from videos (Sec. 3.2, 6.1-6.2)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rvlf.commands._common import check_output_dir, positive_int
from rvlf.inference.model_paths import looks_like_hub_id
from rvlf.errors import RvlfError


def register(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="keypoints, hand/face crops and DINOv2 features from videos",
        description="Write OUT/<name>.npz per video: keypoints [T,77,3] (pixels), DINOv2 features "
        "[T,3,D] of the face, left hand and right hand crops (float16) and metadata. "
        "See docs/extraction.md.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, images, folders (searched for videos and frame folders) or a .jsonl manifest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--keypoints", metavar="FILE_OR_DIR",
                   help="reuse keypoints (.pose, .npz, rtmlib .pkl) instead of running MediaPipe; "
                   "a folder holds <name>.<ext> per video")
    p.add_argument("--dino", default="facebook/dinov2-base", metavar="MODEL",
                   help="DINOv2 hub id or local folder (default: %(default)s)")
    p.add_argument("--no-features", action="store_true", help="keypoints only: skip crops and DINOv2")
    p.add_argument("--workers", type=int, default=1, help="processes decoding and running MediaPipe (default: 1)")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose output already exists")
    p.add_argument("--allow-empty", action="store_true",
                   help="write videos in which no signer's body is found in any frame (all-zero keypoints) "
                   "instead of failing on them")
    p.add_argument("--batch-size", type=positive_int, default=32, help="crops per DINOv2 forward pass (default: 32)")
    p.add_argument("--margin", type=float, default=0.25,
                   help="crop boxes grow by this fraction of their side on each side (default: 0.25)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="DINOv2 device (default: cuda when available)")
    p.add_argument("--shard", metavar="K/N", default=None,
                   help="extract only shard K of N (0 <= K < N; by a hash of each output name, so the same "
                   "on every machine); default under a Slurm job array: its task's shard")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: --workers processes on this machine; ray: tasks and DINOv2 actors on a Ray "
                   "cluster (pip install 'rvlf[ray]'; docs/extraction.md)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address for --engine ray (default: RAY_ADDRESS, else a local cluster)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # tqdm (about 40 modules), NumPy (rvlf.data.extract) and hashlib (rvlf.data.shards; it loads OpenSSL):
    # only when extracting, not at the start-up every `rvlf` call pays
    from tqdm.auto import tqdm

    from rvlf.data.extract import extract, find_jobs
    from rvlf.data.shards import resolve_shard, select_shard

    if args.workers < 1:
        raise RvlfError(f"--workers must be >= 1, got {args.workers}")
    if args.margin < 0:
        raise RvlfError(f"--margin must be >= 0, got {args.margin}")
    if args.address and args.engine != "ray":
        raise RvlfError("--address is for --engine ray")
    check_output_dir(args.out, "--out")
    if args.keypoints is not None and not Path(args.keypoints).exists():
        raise RvlfError(f"--keypoints {args.keypoints}: no such file or folder")
    if not args.no_features:
        check_dino_arg(args.dino)
    shard = resolve_shard(args.shard)
    jobs = find_jobs(args.inputs, args.out, args.keypoints)
    if not jobs:
        raise RvlfError(f"no videos or frame folders found in {' '.join(args.inputs)}")
    if shard is not None:
        total = len(jobs)
        jobs = select_shard(jobs, args.out, *shard)
        print(f"rvlf extract: shard {shard[0]}/{shard[1]}{'' if args.shard else ' (Slurm array task)'}: "
              f"{len(jobs)} of {total} videos")
        if not jobs:
            return 0
    todo = [j for j in jobs if j.problem is None and (args.overwrite or not j.out.exists())]
    if args.keypoints is not None and Path(args.keypoints).is_dir() and todo \
            and not any(j.keypoints.is_file() for j in todo):
        names = ", ".join(j.keypoints.name for j in todo[:2]) + (", ..." if len(todo) > 2 else "")
        raise RvlfError(f"--keypoints {args.keypoints}: no keypoint file for any of the {len(todo)} input(s) to "
                        f"extract (looked for {names}: a folder holds <name>.pose, .npz or .pkl per video)")
    if any(j.keypoints is None for j in todo):
        # NumPy (rvlf.data.holistic): only when some input needs MediaPipe
        from rvlf.data.holistic import require_mediapipe

        require_mediapipe()  # once, before any file: not one failure per video
    # --out is not made here: the first feature file written makes it (atomic.write_file), so a run that
    # stops before its first video (DINOv2 that does not load, no Ray cluster) leaves no new folder behind

    on_failure = lambda line: tqdm.write(f"rvlf extract: {line}", file=sys.stderr)  # noqa: E731
    if args.engine == "ray":
        # Ray (the optional extra 'ray') and NumPy (rvlf.data.extract_ray): only for --engine ray
        from rvlf.data.extract_ray import extract_ray

        summary = extract_ray(jobs, None if args.no_features else args.dino, batch_size=args.batch_size,
                              overwrite=args.overwrite, margin=args.margin, allow_empty=args.allow_empty,
                              address=args.address, on_failure=on_failure)
        return _report(args, jobs, summary)
    encoder = None
    if not args.no_features and todo:
        import torch  # deferred on purpose: --no-features (keypoints only) needs no torch or transformers

        from rvlf.data.features import DinoEncoder

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if device == "cuda" else torch.float32
        encoder = DinoEncoder(args.dino, device=device, batch_size=args.batch_size, dtype=dtype)

    summary = extract(jobs, encoder=encoder, workers=args.workers, overwrite=args.overwrite, margin=args.margin,
                      on_failure=on_failure, allow_empty=args.allow_empty)
    return _report(args, jobs, summary)


def _report(args: argparse.Namespace, jobs: list, summary) -> int:
    # NumPy (rvlf.data.extract): run has imported it; at module level every `rvlf` start-up would pay for it
    from rvlf.data.extract import RATE_PARTS

    rates = summary.mean_rates()
    print(f"rvlf extract: {summary.done} done, {summary.skipped} skipped (already extracted), "
          f"{len(summary.failed)} failed; {summary.frames} frames -> {args.out}")
    if rates:
        print("mean detection rate: " + ", ".join(f"{p.replace('_', ' ')} {100 * rates[p]:.1f}%" for p in RATE_PARTS))
    if summary.empty:
        print(f"written without a signer (--allow-empty; body found in no frame) ({len(summary.empty)}):")
        for source in summary.empty:
            print(f"  {source}")
    if summary.failed:
        if len(jobs) > 1:  # each error line went to stderr as it failed: here only which inputs, once each
            print(f"failed ({len(summary.failed)}; the reasons are above):")
            for source, _ in summary.failed:
                print(f"  {source}")
        return 1
    return 0


def check_dino_arg(text: str) -> None:
    """Refuse a `--dino` that cannot be a DINOv2 model before any work (`RvlfError`, one line naming it): a
    file, a folder without the `config.json` transformers loads, or a path that does not exist and has not
    the form of a hub id `owner/name` (the checks `rvlf.data.features.DinoEncoder` makes, and more, without
    loading torch). A hub id is left to the loader (the hub or its cache)."""
    local = Path(text).expanduser()
    give = "give the folder that holds its config.json and weights, or a hub id"
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise RvlfError(f"{text}: not a DINOv2 model folder: no config.json ({give})")
        return
    if local.exists():
        raise RvlfError(f"{text}: a file, not a DINOv2 model folder ({give})")
    if looks_like_hub_id(text):
        return
    raise RvlfError(f"{text}: no such DINOv2 model folder (and not a hub id of the form owner/name, such as "
                    "facebook/dinov2-base)")
