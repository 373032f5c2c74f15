"""`rvlf data check`: per-split counts, sentence and frame lengths, and frame-count mismatches.

A sample's reference length is its `num_frames` (CSL-Daily, manifests) or else the frame count
of its video (frame folder or video file), counted by decoding as `rvlf extract` does
(`rvlf.data.video.count_frames`: container headers may lack a count or overcount). Its
keypoint/feature length comes from `--features DIR/<id>.npz`, else the manifest's `features` or
`keypoints` file. Samples whose two counts differ (a frequent reproduction problem: features
extracted from another cut of the video) are listed; so are samples whose signer's body is found
in fewer than `--min-body-share` of their frames, and the number of samples longer than
`--max-frames` (cut by `data.long_inputs`) is given. The command exits 1 when there are
mismatches, missing feature files or samples without enough body.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from rvlf.data.poses import read_keypoints
from rvlf.data.readers import SPLITS, READERS, SignSample, read_dataset
from rvlf.errors import InputFileError


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset checks", description="Dataset checks.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser(
        "check", help="counts, sentence/frame lengths, frame-count mismatches",
        description="Report per split: sample count, sentence length (characters for zh, words otherwise), "
                    "video and feature frame lengths, and samples whose feature frame count differs from "
                    "the video's. Exit code 1 when any sample mismatches or lacks its feature file.")
    c.add_argument("--dataset", required=True, metavar="KIND", help=f"one of: {', '.join(READERS)}")
    c.add_argument("--root", required=True, help="dataset root (for `manifest`: the .jsonl file or its folder)")
    c.add_argument("--features", default=None, metavar="DIR", help="feature files DIR/<id>.npz")
    c.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to check")
    c.add_argument("--min-body-share", type=float, default=0.5, metavar="S",
                   help="list samples whose signer's body is found in fewer than this share of frames "
                        "(default: %(default)s; 0 lists none)")
    c.add_argument("--max-frames", type=int, default=300, metavar="N",
                   help="count samples longer than this, which training cuts by data.long_inputs (default: 300)")
    c.add_argument("--show", type=int, default=20, metavar="N", help="list at most N problem samples")
    c.add_argument("--json", action="store_true", help="print the report as one JSON object")
    c.set_defaults(func=run)


def video_frame_count(path: Path | None) -> int | None:
    """Frames in a frame folder (hidden `._*` files are not frames) or a video file, counted by
    decoding as `rvlf extract` sees them (`count_frames`); None if absent or not a video."""
    from rvlf.data.video import count_frames, frame_files, is_video

    if path is None or not path.exists():
        return None
    if path.is_dir():
        return len(frame_files(path))
    if not is_video(path):
        return None
    return count_frames(path)


def feature_frame_count(path: Path) -> int:
    """Frames in an rvlf feature file (`keypoints` of an .npz) or any keypoint file."""
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "keypoints" in z.files:
                    return int(z["keypoints"].shape[0])
        except (OSError, ValueError) as err:
            raise InputFileError(path, f"not a readable .npz file ({err})") from None
    return int(read_keypoints(path).shape[0])


def covered_frames(path: Path, frames: int) -> int:
    """Frames of the video a feature/keypoint file of `frames` frames describes: more than
    `frames` for a window of a longer video (a Uni-Sign `.pkl` `start`/`end`, or an `rvlf extract`
    file made from one, whose `meta.video_frames` says so)."""
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        except (OSError, ValueError) as err:
            raise InputFileError(path, f"not a readable .npz file ({err})") from None
        total = meta.get("video_frames") if isinstance(meta, dict) else None
        return int(total) if isinstance(total, int) and total >= frames else frames
    if path.suffix.lower() == ".pkl":
        from rvlf.data.poses import load_keypoint_file

        return load_keypoint_file(path).total
    return frames


def signer_and_length_report(samples: list[SignSample], features_dir: str | None = None,
                             min_body_share: float = 0.5, max_frames: int = 300) -> dict:
    """Samples whose body is found in fewer than `min_body_share` of their frames (`low_body`),
    and per split the number of samples longer than `max_frames` (`long_inputs`)."""
    from rvlf.data.dataset import feature_summary

    low, long_counts = [], {}
    for s in samples:
        feat = _feature_file(s, features_dir)
        if feat is None or not feat.is_file():
            continue
        frames, share = feature_summary(feat)
        if share < min_body_share:
            low.append({"id": s.id, "split": s.split, "frames": frames, "body_share": round(share, 3)})
        if frames > max_frames:
            long_counts[s.split] = long_counts.get(s.split, 0) + 1
    return {"low_body": low, "min_body_share": min_body_share,
            "long_inputs": {"max_frames": max_frames, "samples": long_counts}}


def _print_signer_and_length(report: dict, show: int) -> None:
    low = report["low_body"]
    if low:
        print(f"{len(low)} samples whose body is found in fewer than {100 * report['min_body_share']:.0f}% "
              "of their frames:")
        for item in low[:show]:
            print(f"  {item['split']}/{item['id']}: body in {100 * item['body_share']:.0f}% of {item['frames']} frames")
        if len(low) > show:
            print(f"  ... and {len(low) - show} more")
    counts = report["long_inputs"]["samples"]
    if counts:
        per_split = ", ".join(f"{split} {n}" for split, n in counts.items())
        print(f"{sum(counts.values())} samples longer than {report['long_inputs']['max_frames']} frames "
              f"(cut by data.long_inputs): {per_split}")


def _feature_file(sample: SignSample, features_dir: str | None) -> Path | None:
    if features_dir:
        return Path(features_dir) / f"{sample.id}.npz"
    return sample.features or sample.keypoints


def _stats(values: list[int]) -> dict | None:
    if not values:
        return None
    return {"n": len(values), "min": min(values), "mean": round(statistics.fmean(values), 1),
            "median": statistics.median(values), "max": max(values)}


def sentence_length(sample: SignSample) -> int:
    """Characters (spaces dropped) for Chinese, whitespace tokens otherwise (the metric's units)."""
    return len("".join(sample.text.split())) if sample.lang == "zh" else len(sample.text.split())


def check_samples(samples: list[SignSample], features_dir: str | None = None) -> dict:
    """The report: per split statistics, mismatching samples and missing feature files."""
    report: dict = {"splits": {}, "mismatches": [], "missing_features": []}
    for split in SPLITS:
        chosen = [s for s in samples if s.split == split]
        if not chosen:
            continue
        video_lengths, feature_lengths, missing_video = [], [], 0
        for s in chosen:
            ref = s.num_frames if s.num_frames is not None else video_frame_count(s.video)
            if s.video is not None and not s.video.exists():
                missing_video += 1
            if ref is not None:
                video_lengths.append(ref)
            feat = _feature_file(s, features_dir)
            if feat is None:
                continue
            if not feat.is_file():
                report["missing_features"].append({"id": s.id, "split": split, "path": str(feat)})
                continue
            n = feature_frame_count(feat)
            feature_lengths.append(n)
            if ref is not None and covered_frames(feat, n) != ref:
                report["mismatches"].append({"id": s.id, "split": split, "video_frames": ref, "feature_frames": n})
        report["splits"][split] = {
            "samples": len(chosen),
            "sentence_length": _stats([sentence_length(s) for s in chosen]),
            "video_frames": _stats(video_lengths),
            "feature_frames": _stats(feature_lengths),
            "missing_videos": missing_video,
        }
    return report


def _fmt(st: dict | None) -> str:
    if st is None:
        return "-"
    return f"{st['min']}/{st['mean']}/{st['median']}/{st['max']} (n={st['n']})"


def _print(report: dict, show: int) -> None:
    print(f"{'split':<6} {'samples':>8}  {'sentence min/mean/median/max':<34} {'video frames':<34} "
          f"{'feature frames':<34} missing videos")
    for split, st in report["splits"].items():
        print(f"{split:<6} {st['samples']:>8}  {_fmt(st['sentence_length']):<34} {_fmt(st['video_frames']):<34} "
              f"{_fmt(st['feature_frames']):<34} {st['missing_videos']}")
    for key, title in (("mismatches", "frame-count mismatches"), ("missing_features", "missing feature files")):
        items = report[key]
        if not items:
            continue
        print(f"{len(items)} {title}:")
        for item in items[:show]:
            detail = (f"video {item['video_frames']}, features {item['feature_frames']}"
                      if key == "mismatches" else item["path"])
            print(f"  {item['split']}/{item['id']}: {detail}")
        if len(items) > show:
            print(f"  ... and {len(items) - show} more")


def run(args) -> int:
    samples = read_dataset(args.dataset, args.root, args.splits)
    if args.features and not Path(args.features).is_dir():
        raise InputFileError(args.features, "features folder not found")
    report = check_samples(samples, args.features)
    report.update(signer_and_length_report(samples, args.features, args.min_body_share, args.max_frames))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print(report, args.show)
        _print_signer_and_length(report, args.show)
    return 1 if report["mismatches"] or report["missing_features"] or report["low_body"] else 0
