"""The extraction pipeline behind `rvlf extract`: inputs -> one feature file per video.

Per video: decode, MediaPipe Holistic -> `[T,77,3]` pixel keypoints (or read a keypoint file),
face / hand boxes with the Sec. 6.2 fallback, 224x224 crops, DINOv2 CLS features `[T,3,D]`,
then `OUT/<name>.npz` written atomically. Workers (processes) decode, run MediaPipe and crop;
the main process runs DINOv2 (one model, batched across frames) and writes the files.
A video whose output exists and names it as its source (`meta.source_path`) is skipped (resumable); an
output of another source (or unreadable) fails that video with one line (--overwrite replaces it); a video that fails is reported in one
line and the others carry on. A video (or keypoint file) in which the signer's body is found
in no frame is such a failure (`NoSignerError`) unless `allow_empty`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rvlf import __version__
from rvlf.data.crops import (
    CROP_PARTS,
    NoSignerError,
    check_signer,
    crop_boxes,
    crop_frame,
    missing_parts,
    part_found,
)
from rvlf.data.dino_id import fingerprint
from rvlf.data.features import CROP_SIZE, DinoEncoder, read_feature_meta, save_video_features
from rvlf.data.holistic import HolisticExtractor, quiet_stderr
from rvlf.data.keypoints import from_holistic, to_pixels
from rvlf.data.poses import load_keypoint_file
from rvlf.data.readers import read_manifest
from rvlf.data.video import display_rotation, frame_files, is_image, is_video, iter_frames, video_fps
from rvlf.data.walk import TreeProblem, walk
from rvlf.errors import InputFileError, RvlfError, WriteError

RATE_PARTS = ("body", "face", "left_hand", "right_hand")
KEYPOINT_SUFFIXES = (".pose", ".npz", ".pkl")


@dataclass(frozen=True)
class Job:
    """One video to extract: its source (file, frame folder or image) and output file."""

    source: Path
    out: Path
    keypoints: Path | None = None
    problem: TreeProblem | None = None  # a broken link or link loop met while walking an input folder


@dataclass
class Prepared:
    """What a worker hands back: pixel keypoints, the crops (None without features) and meta."""

    keypoints: np.ndarray
    crops: np.ndarray | None
    found: np.ndarray
    meta: dict
    notes: list[str] = field(default_factory=list)  # one line each, printed when the file is written


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    frames: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # written with --allow-empty although no body was found
    rates: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in RATE_PARTS})

    def mean_rates(self) -> dict[str, float]:
        """Mean over the videos done in this run of each part's per-video detection rate."""
        return {p: float(np.mean(v)) for p, v in self.rates.items() if v}

    def add_done(self, source: str | Path, meta: dict) -> None:
        """Count one video written (either engine): its frames and per-part detection rates (`meta` of
        its feature file); a video without a body in any frame (--allow-empty) is listed in `empty`."""
        self.done += 1
        self.frames += meta["num_frames"]
        for part, rate in meta["detection_rates"].items():
            self.rates[part].append(rate)
        if meta["detection_rates"]["body"] == 0.0:
            self.empty.append(str(source))


# ---------------------------------------------------------------- discovering the inputs


def _folder_jobs(root: Path, problems: list[TreeProblem]) -> Iterator[tuple[Path, Path]]:
    """(source, name) for every video under `root` and every folder of frame images; linked
    folders and files are followed, broken links and link loops appended to `problems` (`walk`)."""
    for folder, _, files in walk(root, problems):
        rel = folder.relative_to(root)
        if any(is_image(Path(f)) for f in files):
            yield folder, (Path(root.resolve().name) if rel == Path(".") else rel)
        for f in files:
            if is_video(Path(f)):
                yield folder / f, (rel / f).with_suffix("")


def _manifest_jobs(path: Path) -> Iterator[tuple[Path, Path, Path | None]]:
    """(video, name = id, keypoints) for each record of a JSONL manifest that names a video."""
    for sample in read_manifest(path):
        if sample.video is None:
            continue
        name = Path(sample.id)
        if name.is_absolute() or ".." in name.parts:
            raise InputFileError(path, f"id {sample.id!r} cannot be used as a file name")
        yield sample.video, name, sample.keypoints


def _keypoint_file(root: Path, name: Path) -> Path:
    """`root/name.{pose,npz,pkl}` (or `root/stem.*`), else the .pose path to name in the error."""
    for base in (root / name, root / name.name):
        for suffix in KEYPOINT_SUFFIXES:
            if base.with_name(base.name + suffix).is_file():
                return base.with_name(base.name + suffix)
    return (root / name).with_name(name.name + ".{pose,npz,pkl}")


def find_jobs(inputs: Iterable[str | Path], out_dir: str | Path, keypoints: str | Path | None = None) -> list[Job]:
    """Expand INPUT arguments (video files, images, folders, `.jsonl` manifests) into jobs.

    Folders are searched recursively, symbolic links followed (`rvlf.data.walk`): each video file
    and each folder holding frame images is one job, named by its path relative to the input
    folder (`OUT/<rel>.npz`). Each broken link or link loop met is one job more, with `problem`
    set: `extract` reports a broken link as a failed input and a loop as a note; but a broken
    frame image inside a frame folder is that clip's one problem (`frame_files` refuses the clip). A file given by
    name is always attempted (a non-video fails with a clear line at extraction time).
    `keypoints`: one file (a single input only) or a folder of `<name>.{pose,npz,pkl}`; it
    takes precedence over a manifest's `keypoints` fields; a path that does not exist is an `RvlfError`.
    Two inputs whose outputs would be the same `OUT/<name>.npz` (`clip.mp4` and `clip.webm`, a frame
    folder `clip/` beside `clip.mp4`, `a/clip.mp4` and `b/clip.mp4` given as folders `a` and `b`) are an
    `RvlfError` naming both: one would overwrite the other. The same file given twice is one job.
    """
    out_dir = Path(out_dir)
    found: list[tuple[Path, Path, Path | None]] = []
    problems: list[TreeProblem] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += [(src, name, None) for src, name in _folder_jobs(item, problems)]
        elif item.suffix.lower() == ".jsonl" and item.is_file():
            found += list(_manifest_jobs(item))
        else:
            found.append((item, Path(item.stem), None))
    if keypoints is not None:
        kp = Path(keypoints)
        if not kp.exists():  # once, naming it: not "no keypoint file for ..." per video
            raise RvlfError(f"--keypoints {keypoints}: no such file or folder")
        if kp.is_dir():
            found = [(src, name, _keypoint_file(kp, name)) for src, name, _ in found]
        elif len(found) == 1:
            found = [(found[0][0], found[0][1], kp)]
        else:
            raise RvlfError(f"--keypoints {kp}: a single file needs a single video ({len(found)} given); pass a folder")
    jobs, owner = [], {}
    for src, name, kp_path in found:
        out = out_dir / name.with_name(name.name + ".npz")
        if out in owner and _same_path(owner[out], src):
            continue  # one input given twice (`clip.mp4 ./clip.mp4`, a path and its absolute form): one job
        if out in owner:
            raise RvlfError(f"{owner[out]} and {src} would both be written to {out} (an output is named after its "
                            "input without the suffix): extract them into different --out folders, or rename one")
        owner[out] = src
        jobs.append(Job(src, out, kp_path))
    # a broken frame inside a frame folder is that clip's problem (`frame_files` refuses the clip
    # naming the frame), not one input more
    clips = {src for src, _, _ in found}
    return jobs + [Job(p.path, out_dir, problem=p) for p in problems
                   if not (is_image(p.path) and p.path.parent in clips)]


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a == b or a.resolve() == b.resolve()
    except OSError:  # a link loop: not the same input as another path
        return False


# ---------------------------------------------------------------- per video (worker side)


def timed(frames: Iterable, timings: dict | None, key: str = "decode") -> Iterator:
    """`frames`, adding the seconds spent producing each item to `timings[key]` (when given)."""
    it = iter(frames)
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            if timings is not None:
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - t
        yield item


def _holistic(source: Path, keep: np.ndarray | None = None,
              timings: dict | None = None) -> tuple[np.ndarray, tuple[int, int], int]:
    """(keypoints of the frames in `keep` (all when None), frame size, frames decoded). Frames not in
    `keep` are decoded (to count them) but never reach MediaPipe; `timings` gets "decode" and "keypoints"."""
    points, size, n = [], None, 0
    wanted = None if keep is None else set(np.asarray(keep).tolist())
    with quiet_stderr(), HolisticExtractor(static_image_mode=is_image(source)) as extractor:
        for n, frame in enumerate(timed(iter_frames(source), timings), start=1):
            size = _check_size(source, size, frame)
            if wanted is None or n - 1 in wanted:
                t = time.perf_counter()
                points.append(extractor.process(frame))
                if timings is not None:
                    timings["keypoints"] = timings.get("keypoints", 0.0) + time.perf_counter() - t
    return from_holistic(np.stack(points)), size, n


def _check_size(source: Path, size: tuple[int, int] | None, frame: np.ndarray) -> tuple[int, int]:
    here = (frame.shape[1], frame.shape[0])
    if size is not None and here != size:
        raise InputFileError(source, f"frames differ in size ({size[0]}x{size[1]} then {here[0]}x{here[1]})")
    return here


def prepare(job: Job, with_crops: bool = True, margin: float = 0.25, crop_size: int = CROP_SIZE,
            allow_empty: bool = False, keep: np.ndarray | None = None, timings: dict | None = None) -> Prepared:
    """Decode, find keypoints (MediaPipe or `job.keypoints`), boxes and crops of one video.

    Frames are upright (display rotation applied) and counted by decoding. A keypoint file must
    describe as many frames as the video shows (a Uni-Sign `.pkl` window: frames `start..end-1`
    of it); its units are decided and checked by `to_pixels`. Raises `NoSignerError` when the
    body is found in no frame, unless `allow_empty`.

    `keep` (MediaPipe keypoints only, not with `job.keypoints`): indices `int [K]`, increasing, of the
    only frames to run MediaPipe on and crop (`rvlf translate` passes `select_frames(T, data.max_frames,
    data.long_inputs)`); the result then holds those frames, `meta.video_frames` all that were decoded
    and `meta.frames_kept` the indices. `timings` (a dict) gets the seconds spent in "decode",
    "keypoints" (MediaPipe) and "crops".
    """
    source = job.source
    start, total, file_units, notes = 0, None, "pixels", []
    if job.keypoints is None and source.is_file() and source.suffix.lower() in KEYPOINT_SUFFIXES:
        raise InputFileError(source, "a keypoint file, not a video: extraction needs the video or frames it was "
                                     "made from (rvlf extract VIDEO --keypoints FILE); rvlf translate reads it as it is")
    if keep is not None and job.keypoints is not None:
        raise RvlfError("prepare: `keep` selects frames for MediaPipe; a keypoint file is read whole")
    if job.keypoints is None:
        kp, size, decoded = _holistic(source, keep, timings)
        if keep is not None:
            keep = np.asarray(keep, dtype=np.int64)[:len(kp)]
            total = decoded
        kp_source = "mediapipe-holistic (model_complexity=1)"
    else:
        if not job.keypoints.is_file():
            raise InputFileError(job.keypoints, f"no keypoint file for {source}")
        kf = load_keypoint_file(job.keypoints)
        kp, start, total = kf.keypoints, kf.start, kf.total
        first = next(iter_frames(source))
        size = (first.shape[1], first.shape[0])
        kp, file_units, note = fit_keypoints(kp, kf.size, size, job.keypoints, source)
        notes += [note] if note else []
        kp_source = str(job.keypoints)
    T = len(kp)
    if not allow_empty:
        try:
            check_signer(kp, job.keypoints or source, size)
        except NoSignerError as err:
            raise NoSignerError(err.path, f"{err.problem} (--allow-empty writes it anyway)") from None
    boxes, found = crop_boxes(kp, size, margin=margin)
    crops = np.zeros((T, len(CROP_PARTS), crop_size, crop_size, 3), dtype=np.uint8) if with_crops else None
    if keep is not None:  # second pass over the kept frames only, up to the last one
        if crops is not None and T:
            row = {int(f): i for i, f in enumerate(keep)}
            for t, frame in enumerate(timed(iter_frames(source), timings)):
                _check_size(source, size, frame)
                if t in row:
                    t0 = time.perf_counter()
                    crops[row[t]] = crop_frame(frame, boxes[row[t]], crop_size)
                    if timings is not None:
                        timings["crops"] = timings.get("crops", 0.0) + time.perf_counter() - t0
                if t >= keep[-1]:
                    break
    elif with_crops or job.keypoints is not None:  # second pass: crop, and check the frame count
        t = -1
        for t, frame in enumerate(timed(iter_frames(source), timings)):
            _check_size(source, size, frame)
            if crops is not None and start <= t < start + T:
                t0 = time.perf_counter()
                crops[t - start] = crop_frame(frame, boxes[t - start], crop_size)
                if timings is not None:
                    timings["crops"] = timings.get("crops", 0.0) + time.perf_counter() - t0
        expected = total or T
        if t + 1 != expected:
            what = f"keypoints cover {expected} frames"
            if expected != T:
                what += f" (their window {start}..{start + T - 1} is used)"
            raise InputFileError(job.keypoints or source, f"{what} but {source} has {t + 1}")
    detected = np.concatenate([part_found(kp, frame_size=size)[:, :1], found], axis=1)
    meta = {
        "source": str(source),
        "source_path": str(source.resolve()),
        "source_bytes": _source_bytes(source),
        "fps": video_fps(source),
        "num_frames": T,
        "first_frame": start,
        "video_frames": total or T,
        "width": size[0],
        "height": size[1],
        "display_rotation": display_rotation(source),
        "keypoints_source": kp_source,
        "keypoint_units": "pixels",
        "keypoint_file_units": file_units if job.keypoints is not None else None,
        "keypoint_file_size": list(kf.size) if job.keypoints is not None and kf.size else None,
        "crop_size": crop_size,
        "crop_margin": margin,
        "detection_rates": dict(zip(RATE_PARTS, map(float, detected.mean(0)))),
        "missing_parts": missing_parts(found),
        "rvlf_version": __version__,
    }
    if keep is not None:
        meta["frames_kept"] = keep.tolist()
    return Prepared(kp, crops, found, meta, notes)


def fit_keypoints(kp: np.ndarray, file_size: tuple[int, int] | None, size: tuple[int, int], path: Path,
                  video: Path) -> tuple[np.ndarray, str, str | None]:
    """A keypoint file's points -> pixels of the (upright) `size` = (W, H) frames of `video`:
    (keypoints, the file's units, a note line or None).

    When the file states the frame size it was made from (`file_size`, from a `.pose` header or an
    rvlf feature file) and it is not `size`: the same aspect ratio (within 1%) means a smaller or
    larger copy of the video, so the points are scaled to `size` (and the note says so); another
    aspect ratio is an `InputFileError` naming both sizes. Units and fit are checked by `to_pixels`
    (in the file's own frame when it states one)."""
    if file_size is None or tuple(file_size) == tuple(size):
        kp, units = to_pixels(kp, *size, path=str(path), video=str(video))
        return kp, units, None
    (fw, fh), (vw, vh) = file_size, size
    if abs((fw / fh) / (vw / vh) - 1) > 0.01:
        turned = (fh, fw) == (vw, vh)
        hint = (" (turned by 90 degrees: keypoints of the stored, sideways frames of a phone video? rvlf "
                "extracts upright frames)" if turned else "")
        raise InputFileError(path, f"keypoints of {fw}x{fh} frames but the frames of {video} are {vw}x{vh}: "
                                   f"another aspect ratio, so not a copy of this video{hint}")
    kp, units = to_pixels(kp, fw, fh, path=str(path), video=f"the {fw}x{fh} video it states")
    kp = kp.copy()
    kp[..., 0] *= vw / fw
    kp[..., 1] *= vh / fh
    return kp, units, f"{path}: keypoints of {fw}x{fh} frames scaled to the {vw}x{vh} frames of {video}"


def prepare_or_error(job: Job, with_crops: bool, margin: float, allow_empty: bool = False) -> Prepared | str:
    try:
        return prepare(job, with_crops, margin, allow_empty=allow_empty)
    except RvlfError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - a decoder or MediaPipe crash must not stop the others
        return f"{job.source}: {type(err).__name__}: {err}"


def init_worker() -> None:
    # OpenCV and torch: only in a worker process, to pin their threads (importing this module loads neither)
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _prepared(jobs: list[Job], workers: int, with_crops: bool, margin: float,
              allow_empty: bool = False) -> Iterator[tuple[Job, Prepared | str]]:
    """Prepare jobs in this process (workers <= 1) or in a pool, yielding as each finishes."""
    if workers <= 1:
        for job in jobs:
            yield job, prepare_or_error(job, with_crops, margin, allow_empty)
        return
    ctx = multiprocessing.get_context("spawn")  # MediaPipe and torch threads do not survive fork
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker) as pool:
        todo = iter(jobs)
        pending: dict[Future, Job] = {
            pool.submit(prepare_or_error, j, with_crops, margin, allow_empty): j for j in islice(todo, 2 * workers)
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                    result = f"{job.source}: worker process failed ({type(err).__name__}: {err})"
                yield job, result
                nxt = next(todo, None)
                if nxt is not None:
                    pending[pool.submit(prepare_or_error, nxt, with_crops, margin, allow_empty)] = nxt


# ---------------------------------------------------------------- the run (main side)


def encode_crops(encoder: DinoEncoder, crops: np.ndarray, found: np.ndarray) -> np.ndarray:
    """`uint8 [T,3,S,S,3]` -> `float32 [T,3,D]`; a part never found in the video stays zeros."""
    T, P = crops.shape[:2]
    dino = np.zeros((T, P, encoder.dim), dtype=np.float32)
    parts = np.flatnonzero(np.asarray(found).any(0))
    if len(parts):
        feats = encoder.encode(crops[:, parts].reshape(-1, *crops.shape[2:]))
        dino[:, parts] = feats.reshape(T, len(parts), -1)
    return dino


def _source_bytes(source: Path) -> int:
    """Size of a video file in bytes, or of a frame folder's frame files together: with the file
    name, what tells the same input moved elsewhere from another input of the same name."""
    if source.is_dir():
        return sum(f.stat().st_size for f in frame_files(source))
    return source.stat().st_size


def _same_source(recorded: dict, source: Path) -> bool:
    """Does a feature file's meta name `source`? The same resolved path (`source_path`, or `source`
    resolved from here), or the same file name and size (`source_bytes`): a dataset moved or mounted
    elsewhere resumes, while another input of the same name (`a/clip.mp4`'s output for `c/clip.mp4`,
    `clip.mp4`'s for `clip.webm`) does not. A file from before `source_bytes` was recorded counts
    as the same on its name alone."""
    here = str(source.resolve())
    names = [v for v in (recorded.get("source_path"), recorded.get("source")) if isinstance(v, str)]
    if any(str(Path(v).resolve()) == here for v in names):
        return True
    if not any(Path(v).name == source.name for v in names):
        return False
    size = recorded.get("source_bytes")
    return size is None or size == _source_bytes(source)


def already_extracted(job: Job) -> bool:
    """True when `job.out` exists and holds features of `job.source` (skip it); False when there is
    no output yet. Raises `RvlfError` (one line naming the file) when the output holds features of
    another source, or cannot be read: never silently kept, never silently replaced."""
    if not job.out.exists():
        return False
    try:
        meta = read_feature_meta(job.out)
    except InputFileError as err:
        raise RvlfError(f"{err} (output for {job.source} already there; --overwrite replaces it)") from None
    if _same_source(meta, job.source):
        return True
    other = meta.get("source_path") or meta.get("source") or "an unknown source"
    raise RvlfError(f"{job.out} holds features of {other}, not of {job.source}; use --overwrite to replace them "
                    "or another --out")


def extract(
    jobs: list[Job],
    encoder: DinoEncoder | None = None,
    workers: int = 1,
    overwrite: bool = False,
    margin: float = 0.25,
    on_failure: Callable[[str], None] | None = None,
    progress: bool | None = None,
    allow_empty: bool = False,
) -> Summary:
    """Run every job; skip those with an output unless `overwrite`. `encoder=None`: keypoints only.

    A video whose signer's body is found in no frame fails unless `allow_empty` (then its file is
    written, `meta.detection_rates.body` 0, and it is counted in `Summary.empty`).

    `on_failure` receives each failure line as it happens; `progress` shows a tqdm bar
    (None: only on a terminal).
    """
    summary = Summary()
    todo, clashes, notes = [], [], []
    for job in jobs:
        if job.problem is not None:  # met while walking a folder: a link to nothing fails, a loop is a note
            (notes if job.problem.kind == "loop" else clashes).append((str(job.source), str(job.problem)))
            continue
        try:
            if not overwrite and already_extracted(job):
                summary.skipped += 1
                continue
        except RvlfError as err:
            clashes.append((str(job.source), str(err)))
            continue
        todo.append(job)
    dino_meta = {}
    if encoder is not None:
        dino_meta = {"dino_model": encoder.name, "dino_fingerprint": fingerprint(encoder.name),
                     "dino_dim": encoder.dim, "dino_token": "cls"}
    bar = tqdm(total=len(todo), unit="video", disable=None if progress is None else not progress, dynamic_ncols=True)
    report = on_failure or bar.write
    for source, line in clashes:  # an existing output of another source, unreadable, a broken link: it fails
        summary.failed.append((source, line))
        report(f"failed: {line}")
    for _, line in notes:
        report(f"note: {line}")
    start = time.perf_counter()
    try:
        for job, result in _prepared(todo, workers, encoder is not None, margin, allow_empty):
            try:
                if isinstance(result, str):
                    raise RvlfError(result)
                meta = result.meta
                dino = None
                if encoder is not None:
                    dino = encode_crops(encoder, result.crops, result.found)
                    meta |= dino_meta
                save_video_features(job.out, result.keypoints, dino, meta)
                for note in result.notes:
                    report(f"note: {note}")
            except WriteError:  # disk full / read-only: every later video would fail the same way
                raise
            except (RvlfError, OSError) as err:
                summary.failed.append((str(job.source), str(err)))
                report(f"failed: {err}")
            else:
                summary.add_done(job.source, meta)
            bar.update(1)
            bar.set_postfix_str(f"{summary.frames / max(time.perf_counter() - start, 1e-9):.1f} frames/s")
    finally:
        bar.close()
    return summary
