"""Video (or frame folder, image, keypoint or feature file) -> text with a trained checkpoint.

The same pre-processing as `rvlf extract` (MediaPipe Holistic keypoints, face/hand crops with
the Sec. 6.2 fallback, DINOv2 features), then the checkpoint's stage decodes with beam search.
Long inputs are cut as in training (`data.long_inputs`, `rvlf.data.dataset.select_frames`), and
for videos and frames the frames that will be dropped are picked before extraction, so they never
reach MediaPipe or DINOv2. An input in which no signer's body is found in any frame is not
translated (`no_signer`); one that is not plausibly signing gets warnings (`input_warnings`).
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rvlf.data import features
from rvlf.data.crops import body_share, crop_boxes, not_detected, part_found
from rvlf.data.dataset import check_long_inputs, collate, select_frames
from rvlf.data.dino_id import same_model
from rvlf.data.extract import Job, encode_crops, prepare, timed
from rvlf.data.keypoints import normalize_keypoints
from rvlf.data.poses import read_keypoints
from rvlf.data.video import iter_frames
from rvlf.errors import InputFileError, RvlfError

log = logging.getLogger("rvlf.inference.pipeline")

KEYPOINT_SUFFIXES = {".pose", ".pkl"}
# Fewer frames than this (about half a second at 25 fps) are not plausibly a signed sentence.
MIN_SIGNING_FRAMES = 12


@dataclass
class Prepared:
    """One input, ready for the model: pixel keypoints, DINOv2 features (or None), frames if decoded."""

    name: str
    keypoints: np.ndarray
    dino: np.ndarray | None
    source: Path
    boxes: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None  # (W, H) when known: decoded frames or a feature file's meta
    found: np.ndarray | None = None  # bool [T,3]: face/left/right found in the frame itself (False: box reused)
    num_frames: int | None = None  # frames of the input before data.max_frames (None: len(keypoints))
    frames: np.ndarray | None = None  # int [T]: the input frames the keypoints are of (None: 0..T-1)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: decode, keypoints, crops, dinov2
    notes: list[str] = field(default_factory=list)  # what was logged while preparing it (e.g. features that are zeros)

    @property
    def body_share(self) -> float:
        """Share of frames in which the signer's body is found."""
        return body_share(self.keypoints, self.frame_size)

    @property
    def input_frames(self) -> int:
        """Frames in the input itself (before `data.max_frames` picked the ones extracted)."""
        return self.num_frames if self.num_frames is not None else len(self.keypoints)


def _is_feature_file(path: Path) -> bool:
    return path.is_file() and features.is_feature_file(path)  # an unreadable .npz: InputFileError naming it


@functools.lru_cache(maxsize=2)
def dino_encoder(model: str, device: str, dtype=None):
    """The `DinoEncoder` of `model` (hub id or folder) on `device`, loaded once per process: `rvlf
    translate` with many inputs, `SignTranslator` and `rvlf app` reuse it instead of loading DINOv2
    for every video. `dtype`: default `rvlf.data.features.inference_dtype(device)` (bfloat16 on a CPU
    with native bf16, else float32)."""
    # `features.DinoEncoder`, looked up at each call (tests count the loads by replacing it)
    return features.DinoEncoder(model, device=device, dtype=dtype or features.inference_dtype(device))


def check_features_dino(path: Path, meta: dict, dino_model: str) -> None:
    """A feature file's `meta.dino_model` against the checkpoint's DINOv2 (`dino_model`: its
    `dinov2/` copy, its `data.dino_model` or --dino), by `rvlf.data.dino_id.same_model`: another
    model for sure is an `InputFileError` (its features would translate to garbage); one that may be
    another (a hub id not cached, another dtype) is one warning line; the same weights, or a file
    that names no model, pass silently."""
    theirs = meta.get("dino_model")
    if not isinstance(theirs, str) or not theirs:
        return
    fp = meta.get("dino_fingerprint") if isinstance(meta.get("dino_fingerprint"), str) else None
    verdict, why = same_model(str(dino_model), theirs, fingerprint_b=fp)
    if verdict == "same":
        return
    if verdict == "differ":
        raise InputFileError(path, f"its DINOv2 features were extracted with {theirs}, another model than the "
                                   f"checkpoint's {dino_model} ({why}); re-extract it with --dino {dino_model}")
    log.warning("%s: warning: its DINOv2 features were extracted with %s but the checkpoint uses %s (maybe another model: "
                "%s); the translation may be wrong - re-extract it with --dino %s", path, theirs, dino_model, why,
                dino_model)


def prepare_input(path: str | Path, dino_model: str | None, *, device: str = "cpu", margin: float = 0.25,
                  max_frames: int | None = None, long_inputs: str = "truncate") -> Prepared:
    """Keypoints and DINOv2 features of one input (computed, or read from a file).

    With `max_frames` (the checkpoint's `data.max_frames`), a video, frame folder or image keeps only
    the frames `select_frames(T, max_frames, long_inputs)` picks before MediaPipe and DINOv2 run
    (`subsample` counts the frames first by decoding them); the result's `num_frames` is T and
    `frames` the kept indices. Keypoint and feature files are read whole (cut when translated).
    `timings` gets the seconds of "decode", "keypoints" (MediaPipe), "crops" and "dinov2"."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "input not found")
    if path.is_file() and _is_feature_file(path):
        feats = features.load_video_features(path)
        meta = feats["meta"]
        size = (meta["width"], meta["height"]) if isinstance(meta.get("width"), int) and isinstance(
            meta.get("height"), int) else None
        notes = []
        if feats.get("dino") is None and dino_model is not None:
            notes.append("a feature file without DINOv2 features (extracted with --no-features): the face/hand "
                         "features are zeros; re-extract it with --dino for this checkpoint")
            log.warning("%s: warning: %s", path, notes[-1])
        elif feats.get("dino") is not None and dino_model is not None:
            check_features_dino(path, meta, dino_model)
        return Prepared(path.stem, feats["keypoints"], feats.get("dino"), path, frame_size=size, notes=notes)
    if path.is_file() and path.suffix.lower() in (*KEYPOINT_SUFFIXES, ".npz"):
        keypoints = read_keypoints(path)  # an unreadable file: one error line, no warning before it
        notes = []
        if dino_model is not None:
            notes.append("keypoints only - no frames to crop, so the DINOv2 face/hand features are zeros")
            log.warning("%s: warning: %s", path, notes[-1])
        return Prepared(path.stem, keypoints, None, path, notes=notes)
    timings: dict[str, float] = {}
    keep = None
    if max_frames is not None:
        policy = check_long_inputs(long_inputs)
        if policy == "subsample":  # spread over all frames: count them first (decoding only)
            total = sum(1 for _ in timed(iter_frames(path), timings))
            keep = select_frames(total, max_frames, policy)
        else:  # the first max_frames (fewer when the input is shorter)
            keep = np.arange(max_frames)
    prep = prepare(Job(source=path, out=Path(path.stem + ".npz")), with_crops=dino_model is not None, margin=margin,
                   allow_empty=True, keep=keep, timings=timings)  # no signer: reported by the caller, not raised
    dino = None
    if dino_model is not None:
        encoder = dino_encoder(str(dino_model), device, features.inference_dtype(device))  # bf16 on CPUs with native bf16
        t = time.perf_counter()
        dino = encode_crops(encoder, prep.crops, prep.found)
        timings["dinov2"] = time.perf_counter() - t
    size = (prep.meta["width"], prep.meta["height"])
    boxes, found = crop_boxes(prep.keypoints, size, margin=margin)
    kept = prep.meta.get("frames_kept")
    return Prepared(path.stem, prep.keypoints, dino, path, boxes, frame_size=size, found=found,
                    num_frames=prep.meta["video_frames"], frames=None if kept is None else np.asarray(kept),
                    timings=timings)


def no_signer(p: Prepared) -> str | None:
    """The line to print instead of a translation when no signer's body is found in any frame."""
    if p.body_share > 0:
        return None
    return (f"{p.source}: no signer found (the body {not_detected(len(p.keypoints))}); "
            "not translated")


def input_warnings(p: Prepared) -> list[str]:
    """Why `p` is not plausibly signing, one phrase each (empty: nothing to say): a still image or a
    clip shorter than `MIN_SIGNING_FRAMES`, no hand found in any frame, the signer's body found in
    under half of the frames. (No body in any frame is `no_signer`: not translated at all.)"""
    n = p.input_frames
    out = []
    if n < MIN_SIGNING_FRAMES:
        what = "a still image" if n == 1 else f"under {MIN_SIGNING_FRAMES} frames, a fraction of a second"
        out.append(f"only {n} frame{'s' if n != 1 else ''} ({what}): too short to be signing")
    if len(p.keypoints):
        seen = part_found(p.keypoints, frame_size=p.frame_size)
        if not seen[:, 2:].any():
            where = "in its only frame" if len(p.keypoints) == 1 else f"in any of its {len(p.keypoints)} frames"
            out.append(f"no hand found {where}: signing needs hands")
        share = float(seen[:, 0].mean())
        if 0 < share < 0.5:
            out.append(f"the signer's body is found in only {share:.0%} of its {len(p.keypoints)} frames")
    return out


def decode(stage, inputs: list[Prepared], *, num_beams: int = 5, max_new_tokens: int = 64,
           max_frames: int = 300, device: str = "cpu", long_inputs: str = "truncate") -> list[str]:
    """Decode prepared inputs with a loaded stage (`rvlf.inference.loading.load_stage`); inputs
    longer than `max_frames` keep the frames `select_frames(T, max_frames, long_inputs)` picks."""
    dino_dim = getattr(getattr(stage.cfg, "fusion", None), "dino_dim", None)
    uses_dino = hasattr(stage.cfg, "fusion") and (stage.cfg.fusion.use_face or stage.cfg.fusion.use_hand)
    items = []
    for p in inputs:
        keep = select_frames(len(p.keypoints), max_frames, long_inputs)
        item = {"id": p.name, "text": "", "keypoints": normalize_keypoints(p.keypoints[keep])}
        if uses_dino:
            dino = p.dino
            if dino is None:
                dino = np.zeros((len(item["keypoints"]), 3, dino_dim), dtype=np.float32)
            elif dino.shape[-1] != dino_dim:
                raise RvlfError(f"{p.source}: DINOv2 features have {dino.shape[-1]} dims but the checkpoint expects "
                                f"{dino_dim} (extract with the DINOv2 model the checkpoint was trained on, --dino)")
            item["dino"] = np.asarray(dino[keep], dtype=np.float16)
        items.append(item)
    batch = collate(items)
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    with torch.no_grad():
        return stage.decode(batch, num_beams, max_new_tokens)



# Names this module had as `rvlf.translate` before issue 32 that now live under another name or module:
# old code (`from rvlf.translate import translate`) still runs, with one FutureWarning naming the new place.
RENAMED = {"translate": ("rvlf.inference.pipeline", "decode"),
           "overlay_frames": ("rvlf.inference.overlay", "overlay_frames"),
           "draw_overlay": ("rvlf.inference.overlay", "draw_overlay")}


def __getattr__(name: str):
    if name not in RENAMED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new = RENAMED[name]
    warnings.warn(f"rvlf.translate.{name} is now {module}.{new} (same arguments); import it from there (the old "
                  "name will be removed)", FutureWarning, stacklevel=2)
    return getattr(importlib.import_module(module), new)
