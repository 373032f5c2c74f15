"""`rvlf data check`: what a dataset and its feature set hold, and everything that would stop training.

Per split: sample count, sentence and frame lengths, and how many samples exceed `--max-frames`
(the paper's Table 12; training cuts them by `data.long_inputs`). A sample's reference length is
its `num_frames` (CSL-Daily, label files, manifests) or else the frame count of its video (frame
folder or video file), counted by decoding as `rvlf extract` does (`rvlf.data.video.count_frames`:
container headers may lack a count or overcount). Its feature length comes from its feature file
under `--features` (found as training finds it, `rvlf.data.checks.find_feature_file`), else the
manifest's `features` or `keypoints` file; `.npz` feature files are read header-only. Also listed:
frame-count mismatches (features extracted from another cut of the video), missing videos, unreadable
keypoint files, and everything training's own check before step 1 refuses (`rvlf.data.checks`, the
same code: `read_checked`, `check_feature_set`; `training_problems` in --json): missing, unreadable and
inconsistent (DINOv2 in some files only, another width) feature files, empty texts; then samples whose
signer's body is found in fewer than `--min-body-share` of their frames, ids in more than one split
(train/test leakage), names a split list holds that the annotations lack and annotations no split
lists.

Exit code (`exit_code`): 2 when a file cannot be read or the dataset or language is refused; 1 when
training would stop or would silently use fewer samples than the release lists, or the counts
disagree: mismatches, missing or inconsistent feature files, empty texts, samples without enough
body, names a split list holds that the annotations lack (training skips them) and annotations no
split lists (never used), and, when no feature file is checked, missing videos (`rvlf extract` cannot
make their features); else 0. The last line says why (`verdict`). Without feature files to check (no
--features, no manifest `features`) the feature checks are skipped with a note: exit 0 then says
"the release reads well", not "ready to train". Each problem is printed once: the readers' own
warnings about the split lists are not logged here (`ReadNotes.log`), the report lists them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from rvlf.data.readers import READERS, SPLITS, ReadNotes, SignSample
from rvlf.data.walk import dangling_link
from rvlf.errors import ConfigError, InputFileError, RvlfError

if TYPE_CHECKING:
    from rvlf.data.features import FeatureHeader

# rvlf.data.checks, .features and .poses (NumPy) are imported where used: `rvlf data --help` stays quick


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset checks", description="Dataset checks.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser(
        "check", help="counts, lengths, and everything that would stop training",
        description="Report per split: sample count, sentence length (characters for zh, words otherwise), "
                    "video and feature frame lengths, samples over --max-frames; list frame-count mismatches, missing "
                    "videos, everything training's own check before step 1 refuses (missing/unreadable/inconsistent "
                    "feature files, empty texts, a wrong or mixed language; the same code), samples with little body, ids "
                    "in several splits and split-list/annotation mismatches, each once. Exit code: 2 when a file cannot "
                    "be read or the dataset/language is refused; 1 when training would stop or would silently use "
                    "fewer samples than listed (missing/unreadable/inconsistent feature files, empty texts, frame-"
                    "count mismatches, little body, split-list names without annotations or annotations in no "
                    "split list, and, without --features, missing videos that rvlf extract cannot read); else 0. "
                    "Without --features the feature checks are skipped, with a note; the last line says why the "
                    "exit code is what it is.")
    c.add_argument("--dataset", required=True, metavar="KIND", help=f"one of: {', '.join(READERS)}")
    c.add_argument("--root", required=True,
                   help="dataset folder or its annotation file (for `manifest`: the .jsonl file or its folder)")
    c.add_argument("--features", default=None, metavar="DIR",
                   help="feature folder of `rvlf extract` (DIR/<id>.npz, or as extracted from the release's folders)")
    c.add_argument("--video-root", default=None, metavar="DIR",
                   help="openasl: the clips folder; labels: the folder imgs_path/video_path are relative to")
    c.add_argument("--lang", default=None, help="labels: the language of the texts (zh counts characters)")
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
    # NumPy (cv2 or PyAV once a video is decoded): only when frames are counted
    from rvlf.data.video import count_frames, frame_files, is_video

    if path is None or not path.exists():
        return None
    if path.is_dir():
        return len(frame_files(path))
    if not is_video(path):
        return None
    return count_frames(path)


def feature_frame_count(path: Path) -> int:
    """Frames in an rvlf feature file (header-only) or any keypoint file; InputFileError if unreadable."""
    return feature_header(path).frames


def feature_header(path: Path) -> FeatureHeader:
    """The header of an rvlf feature file, or a keypoint file's frame count as one (no DINOv2)."""
    # NumPy (pose-format for .pose files): only when a feature or keypoint file is read
    from rvlf.data.features import FeatureHeader, is_feature_file, read_feature_header
    from rvlf.data.poses import read_keypoints

    if path.suffix.lower() == ".npz" and is_feature_file(path):
        return read_feature_header(path)
    return FeatureHeader(path, int(read_keypoints(path).shape[0]), None)


def covered_frames(path: Path, frames: int) -> int:
    """Frames of the video a feature/keypoint file of `frames` frames describes: more than
    `frames` for a window of a longer video (a Uni-Sign `.pkl` `start`/`end`, or an `rvlf extract`
    file made from one, whose `meta.video_frames` says so)."""
    # NumPy (rvlf.data.features): only when a feature file is read
    from rvlf.data.features import is_feature_file, read_feature_meta

    if path.suffix.lower() == ".npz":
        meta = read_feature_meta(path) if is_feature_file(path) else {}
        total = meta.get("video_frames")
        return int(total) if isinstance(total, int) and total >= frames else frames
    if path.suffix.lower() == ".pkl":
        # NumPy (rvlf.data.poses): only for a .pkl keypoint file
        from rvlf.data.poses import load_keypoint_file

        return load_keypoint_file(path).total
    return frames


def signer_and_length_report(samples: list[SignSample], features_dir: str | None = None,
                             min_body_share: float = 0.5, max_frames: int = 300) -> dict:
    """Samples whose body is found in fewer than `min_body_share` of their frames (`low_body`),
    and per split the number of samples longer than `max_frames` (`long_inputs`)."""
    # NumPy, PyYAML, pydantic (rvlf.data.checks): only when the check runs, not for `rvlf --help`
    from rvlf.data.checks import feature_summary

    low, long_counts = [], {}
    for s in samples:
        feat = _feature_file(s, features_dir)
        if feat is None or not feat.is_file():
            continue
        try:
            frames, share = feature_summary(feat)
        except InputFileError:  # listed by check_samples as unreadable
            continue
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
    # NumPy, PyYAML, pydantic (rvlf.data.checks): only when the check runs, not for `rvlf --help`
    from rvlf.data.checks import sample_feature_file

    return sample_feature_file(sample, features_dir) or sample.keypoints


def _stats(values: list[int]) -> dict | None:
    if not values:
        return None
    return {"n": len(values), "min": min(values), "mean": round(statistics.fmean(values), 1),
            "median": statistics.median(values), "max": max(values)}


def sentence_length(sample: SignSample) -> int:
    """Characters (spaces dropped) for Chinese, whitespace tokens otherwise (the metric's units)."""
    return len("".join(sample.text.split())) if sample.lang == "zh" else len(sample.text.split())


def check_samples(samples: list[SignSample], features_dir: str | None = None, *,
                  max_frames: list[int] | tuple[int, ...] = (300,), notes: ReadNotes | None = None,
                  splits: list[str] | tuple[str, ...] = SPLITS) -> dict:
    """The report: per split statistics, and every problem sample (see the module docstring).

    What stops training is found by training's own check (`rvlf.data.checks.check_feature_set`,
    as `rvlf.train.common.load_samples` runs it before step 1): `training_problems` holds its
    one-line messages, and `missing_features`, `unreadable_features`, `dino_problems` and
    `empty_texts` its problems by kind. Without any feature file to check (no `features_dir` and
    no manifest `features`), only empty texts are checked and `features_checked` is False."""
    report: dict = {"splits": {}, "mismatches": [], "missing_videos": [], "unreadable_keypoints": []}
    training, headers = training_check(samples, features_dir, splits)
    for split in SPLITS:
        chosen = [s for s in samples if s.split == split]
        if not chosen:
            continue
        video_lengths, feature_lengths, lengths, missing_video = [], [], [], 0
        for s in chosen:
            ref = s.num_frames if s.num_frames is not None else video_frame_count(s.video)
            if s.video is not None and not s.video.exists():
                missing_video += 1
                item = {"id": s.id, "split": split, "path": str(s.video), "where": s.source or ""}
                if link := dangling_link(s.video):  # a link on the way to nothing: say which
                    item["link"] = link
                report["missing_videos"].append(item)
            if ref is not None:
                video_lengths.append(ref)
            n = None
            feat = _feature_file(s, features_dir)
            header = headers.get((split, s.id))  # read by the training check already
            if header is None and feat is not None and feat.is_file():  # lengths only: problems come from it
                try:
                    header = feature_header(feat)
                except InputFileError as err:  # a training feature file is listed by training's check
                    if feat == s.keypoints:
                        report["unreadable_keypoints"].append({"id": s.id, "split": split, "path": str(feat),
                                                               "problem": err.problem})
            if header is not None:
                n = header.frames
                feature_lengths.append(n)
                if ref is not None and covered_frames(header.path, n) != ref:
                    report["mismatches"].append({"id": s.id, "split": split, "video_frames": ref,
                                                 "feature_frames": n})
            length = n if n is not None else ref
            if length is not None:
                lengths.append(length)
        report["splits"][split] = {
            "samples": len(chosen),
            "sentence_length": _stats([sentence_length(s) for s in chosen]),
            "video_frames": _stats(video_lengths),
            "feature_frames": _stats(feature_lengths),
            "missing_videos": missing_video,
            "over_max_frames": over_max_frames(lengths, max_frames),
        }
    report.update(training)
    report["shared_ids"] = shared_ids(samples)
    report.update(split_list_report(notes))
    return report


def training_check(samples: list[SignSample], features_dir: str | None, splits: list[str] | tuple[str, ...]
                   ) -> tuple[dict, dict[tuple[str, str], FeatureHeader]]:
    """What training's check before step 1 (`check_feature_set`, the code `load_samples` runs) says
    about `samples`: `training_problems` (its one-line messages, as training prints them) and the
    same problems by kind; and the feature headers it read, by (split, id). `features_checked` is
    False when no sample has a feature file to look for (no `features_dir`, no manifest
    `features`): a dataset checked before `rvlf extract`."""
    # NumPy, PyYAML, pydantic (rvlf.data.checks): only when the check runs, not for `rvlf --help`
    from rvlf.data.checks import check_feature_set

    by_split: dict[str, list[SignSample]] = {}
    for s in samples:
        by_split.setdefault(s.split, []).append(s)
    checked = bool(features_dir) or any(s.features for s in samples)
    feature_set = check_feature_set(by_split, features_dir, splits=splits)
    problems = feature_set.problems
    if not checked:
        problems = [p for p in problems if p.kind == "empty-text"]
    out: dict = {"features_checked": checked, "training_problems": [p.line() for p in problems],
                 "missing_features": [], "unreadable_features": [], "dino_problems": [], "empty_texts": []}
    for p in problems:
        item = {"id": p.id, "split": p.split, "path": p.path, "problem": p.problem}
        if p.kind == "empty-text":
            out["empty_texts"].append({"id": p.id, "split": p.split, "where": p.path})
        elif p.kind == "missing":
            out["missing_features"].append(item)
        elif p.kind == "unreadable":
            out["unreadable_features"].append(item)
        else:
            out["dino_problems"].append(item)
    return out, feature_set.headers


def over_max_frames(lengths: list[int], thresholds: list[int] | tuple[int, ...]) -> dict[str, int]:
    """{str(N): how many of `lengths` exceed N} (Table 12: samples cut by `data.max_frames`)."""
    return {str(n): sum(1 for x in lengths if x > n) for n in thresholds}


def shared_ids(samples: list[SignSample]) -> list[dict]:
    """Ids found in more than one split: the same clip trained on and scored (train/test leakage)."""
    splits: dict[str, list[str]] = {}
    for s in samples:
        if s.split not in splits.setdefault(s.id, []):
            splits[s.id].append(s.split)
    return [{"id": i, "splits": sp} for i, sp in splits.items() if len(sp) > 1]


def split_list_report(notes: ReadNotes | None) -> dict:
    """Names a split list holds that the annotations lack (skipped), and annotations no split lists."""
    notes = notes or ReadNotes()
    return {"listed_not_annotated": [{"id": n, "split": s, "where": w} for s, n, w in notes.missing],
            "annotated_not_listed": list(notes.unlisted)}


def _fmt(st: dict | None) -> str:
    if st is None:
        return "-"
    return f"{st['min']}/{st['mean']}/{st['median']}/{st['max']} (n={st['n']})"


def _print(report: dict, show: int) -> None:
    thresholds = next(iter(report["splits"].values()))["over_max_frames"] if report["splits"] else {}
    over = "over " + "/".join(thresholds) + " frames" if thresholds else ""
    print(f"{'split':<6} {'samples':>8}  {'sentence min/mean/median/max':<34} {'video frames':<34} "
          f"{'feature frames':<34} {'missing videos':>14}  {over}")
    for split, st in report["splits"].items():
        counts = "/".join(str(v) for v in st["over_max_frames"].values())
        print(f"{split:<6} {st['samples']:>8}  {_fmt(st['sentence_length']):<34} {_fmt(st['video_frames']):<34} "
              f"{_fmt(st['feature_frames']):<34} {st['missing_videos']:>14}  {counts}")
    sections = (
        ("mismatches", "frame-count mismatches", lambda i: f"{i['split']}/{i['id']}: video {i['video_frames']}, "
                                                           f"features {i['feature_frames']}"),
        ("missing_videos", "missing videos", lambda i: f"{i['split']}/{i['id']}: {i['path']}"
                                                       + (f": {i['link']}" if i.get("link") else "")
                                                       + (f" ({i['where']})" if i["where"] else "")),
        ("missing_features", "missing feature files", lambda i: f"{i['split']}/{i['id']}: {i['path']}: {i['problem']}"),
        ("unreadable_features", "unreadable feature files",
         lambda i: f"{i['split']}/{i['id']}: {i['path']}: {i['problem']}"),
        ("unreadable_keypoints", "unreadable keypoint files",
         lambda i: f"{i['split']}/{i['id']}: {i['path']}: {i['problem']}"),
        ("dino_problems", "inconsistent DINOv2 features", lambda i: f"{i['split']}/{i['id']}: {i['path']}: "
                                                                    f"{i['problem']}"),
        ("empty_texts", "empty texts", lambda i: f"{i['split']}/{i['id']}: {i['where']}: empty text"),
        ("shared_ids", "ids in more than one split (train/test leakage?)",
         lambda i: f"{i['id']}: {', '.join(i['splits'])}"),
        ("listed_not_annotated", "names in a split list but not in the annotations (skipped)",
         lambda i: f"{i['split']}/{i['id']}: {i['where']}"),
        ("annotated_not_listed", "annotated names in no split list (not used)", lambda i: str(i)),
    )
    for key, title, fmt in sections:
        items = report.get(key) or []
        if not items:
            continue
        print(f"{len(items)} {title}:")
        for item in items[:show]:
            print(f"  {fmt(item)}")
        if len(items) > show:
            print(f"  ... and {len(items) - show} more")
    if not report.get("features_checked", True):
        print("feature files not checked: no --features and no manifest `features`; training needs a feature "
              "file for every sample (rvlf extract), give --features FEATS to check them as training will")
    elif report.get("training_problems"):
        print(f"training stops before step 1 on {len(report['training_problems'])} problems (listed above; "
              "the same check as rvlf pretrain/sft/grpo/evaluate)")


_STOPS = (  # report key, what it is, what training does about it
    ("training_problems", "problems training's check refuses", "stops before step 1"),
    ("mismatches", "frame-count mismatches", "trains on features of another cut"),
    ("low_body", "samples with little body", "trains on them"),
    ("listed_not_annotated", "split-list names without annotations", "skips them"),
    ("annotated_not_listed", "annotations in no split list", "never uses them"),
)


def verdict(report: dict) -> tuple[int, str]:
    """(exit code, one line saying why). 2: a feature or keypoint file cannot be read; 1: training
    would stop, or would silently use fewer samples than the release lists, or the counts disagree
    (`_STOPS`; and missing videos when no feature file was checked: `rvlf extract` cannot make their
    features, so training would stop); 0: usable (or, without feature files, the release reads well)."""
    unreadable = len(report["unreadable_features"]) + len(report.get("unreadable_keypoints") or [])
    if unreadable:
        return 2, f"exit 2: {unreadable} unreadable feature or keypoint files"
    found = [f"{len(report[key])} {what} (training {does})" for key, what, does in _STOPS if report.get(key)]
    if report["missing_videos"] and not report.get("features_checked", True):
        found.append(f"{len(report['missing_videos'])} missing videos (rvlf extract cannot make their features, "
                     "so training would stop)")
    if found:
        return 1, "exit 1: " + "; ".join(found)
    if not report.get("features_checked", True):
        return 0, "exit 0: the release reads well (feature files not checked)"
    return 0, "exit 0: ready to train"


def exit_code(report: dict) -> int:
    """2: a file cannot be read; 1: training would stop or shrink, or counts disagree; 0: usable (`verdict`)."""
    return verdict(report)[0]


def run(args) -> int:
    try:
        return _run(args)
    except RvlfError as err:  # refused before any report: --json still prints one JSON object (and stderr the line)
        if getattr(args, "json", False):
            print(json.dumps({"error": str(err)}, ensure_ascii=False))
        raise


def _run(args) -> int:
    # PyYAML, pydantic (rvlf.config) and NumPy (rvlf.data.checks): only when the check runs, not for `rvlf --help`
    from rvlf.config import DataConfig
    from rvlf.data.checks import read_checked

    if args.video_root and not Path(args.video_root).is_dir():
        raise InputFileError(args.video_root, "--video-root: no such folder")

    # what stops training before step 1 stops the check too, by the same code (data.lang is --lang here)
    data = DataConfig(dataset=args.dataset, root=str(args.root), lang=args.lang or "",
                      video_root=args.video_root or "")
    notes = ReadNotes(log=False)  # listed by the report: said once
    try:
        samples = read_checked(data, args.splits, notes=notes, lang_from_manifest=True)
    except ConfigError as err:
        raise ConfigError(f"{err} (training stops on this; here data.lang is --lang)") from None
    if not samples:
        raise InputFileError(args.root, f"no samples in the {', '.join(args.splits)} split(s)")
    if args.features and not Path(args.features).is_dir():
        raise InputFileError(args.features, "features folder not found")
    report = check_samples(samples, args.features, max_frames=(args.max_frames,), notes=notes, splits=args.splits)
    report.update(signer_and_length_report(samples, args.features, args.min_body_share, args.max_frames))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print(report, args.show)
        _print_signer_and_length(report, args.show)
        print(verdict(report)[1])
    return exit_code(report)
