"""Video (or frame folder, image, keypoint or feature file) -> text with a trained checkpoint.

The same pre-processing as `rvlf extract` (MediaPipe Holistic keypoints, face/hand crops with
the Sec. 6.2 fallback, DINOv2 features), then the checkpoint's stage decodes with beam search.
Long inputs are cut as in training (`data.long_inputs`, `rvlf.data.dataset.select_frames`); an
input in which no signer's body is found in any frame is not translated (`no_signer`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rvlf.data.crops import body_share
from rvlf.data.dataset import collate, select_frames
from rvlf.data.keypoints import PARTS, normalize_keypoints
from rvlf.errors import InputFileError, RvlfError

log = logging.getLogger("rvlf.translate")

KEYPOINT_SUFFIXES = {".pose", ".pkl"}
PART_COLOURS = {"body": (255, 255, 255), "left_hand": (0, 200, 255), "right_hand": (255, 120, 0),
                "mouth": (255, 0, 160), "face": (0, 255, 120)}
BOX_COLOURS = ((0, 255, 120), (0, 200, 255), (255, 120, 0))  # face, left hand, right hand


@dataclass
class Prepared:
    """One input, ready for the model: pixel keypoints, DINOv2 features (or None), frames if decoded."""

    name: str
    keypoints: np.ndarray
    dino: np.ndarray | None
    source: Path
    boxes: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None  # (W, H) when known: decoded frames or a feature file's meta

    @property
    def body_share(self) -> float:
        """Share of frames in which the signer's body is found."""
        return body_share(self.keypoints, self.frame_size)


def _is_feature_file(path: Path) -> bool:
    from rvlf.data.features import is_feature_file

    return path.is_file() and is_feature_file(path)  # an unreadable .npz: InputFileError naming it


@functools.lru_cache(maxsize=2)
def dino_encoder(model: str, device: str, dtype=None):
    """The `DinoEncoder` of `model` (hub id or folder) on `device`, loaded once per process: `rvlf
    translate` with many inputs, `SignTranslator` and `rvlf app` reuse it instead of loading DINOv2
    for every video. `dtype`: default `rvlf.data.features.inference_dtype(device)` (bfloat16 on a CPU
    with native bf16, else float32)."""
    from rvlf.data.features import DinoEncoder, inference_dtype

    return DinoEncoder(model, device=device, dtype=dtype or inference_dtype(device))


def check_features_dino(path: Path, meta: dict, dino_model: str) -> None:
    """A feature file's `meta.dino_model` against the checkpoint's DINOv2 (`dino_model`: its
    `dinov2/` copy, its `data.dino_model` or --dino), by `rvlf.data.dino_id.same_model`: another
    model for sure is an `InputFileError` (its features would translate to garbage); one that may be
    another (a hub id not cached, another dtype) is one warning line; the same weights, or a file
    that names no model, pass silently."""
    from rvlf.data.dino_id import same_model

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
    log.warning("%s: its DINOv2 features were extracted with %s but the checkpoint uses %s (maybe another model: "
                "%s); the translation may be wrong - re-extract it with --dino %s", path, theirs, dino_model, why,
                dino_model)


def prepare_input(path: str | Path, dino_model: str | None, *, device: str = "cpu", margin: float = 0.25) -> Prepared:
    """Keypoints and DINOv2 features of one input (computed, or read from a file)."""
    from rvlf.data.features import load_video_features

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "input not found")
    if path.is_file() and _is_feature_file(path):
        feats = load_video_features(path)
        meta = feats["meta"]
        size = (meta["width"], meta["height"]) if isinstance(meta.get("width"), int) and isinstance(
            meta.get("height"), int) else None
        if feats.get("dino") is None and dino_model is not None:
            log.warning("%s: a feature file without DINOv2 features (extracted with --no-features): the face/hand "
                        "features are zeros; re-extract it with --dino for this checkpoint", path)
        elif feats.get("dino") is not None and dino_model is not None:
            check_features_dino(path, meta, dino_model)
        return Prepared(path.stem, feats["keypoints"], feats.get("dino"), path, frame_size=size)
    if path.is_file() and path.suffix.lower() in (*KEYPOINT_SUFFIXES, ".npz"):
        from rvlf.data.poses import read_keypoints

        keypoints = read_keypoints(path)  # an unreadable file: one error line, no warning before it
        if dino_model is not None:
            log.warning("%s: keypoints only - no frames to crop, so the DINOv2 face/hand features are zeros", path)
        return Prepared(path.stem, keypoints, None, path)
    from rvlf.data.extract import Job, encode_crops, prepare

    prep = prepare(Job(source=path, out=Path(path.stem + ".npz")), with_crops=dino_model is not None, margin=margin,
                   allow_empty=True)  # an input without a signer is reported by the caller, not raised
    dino = None
    if dino_model is not None:
        from rvlf.data.features import inference_dtype

        encoder = dino_encoder(str(dino_model), device, inference_dtype(device))  # bf16 on CPUs with native bf16
        dino = encode_crops(encoder, prep.crops, prep.found)
    from rvlf.data.crops import crop_boxes

    size = (prep.meta["width"], prep.meta["height"])
    boxes, _ = crop_boxes(prep.keypoints, size, margin=margin)
    return Prepared(path.stem, prep.keypoints, dino, path, boxes, frame_size=size)


def no_signer(p: Prepared) -> str | None:
    """The line to print instead of a translation when no signer's body is found in any frame."""
    if p.body_share > 0:
        return None
    return (f"{p.source}: no signer found (the body is detected in none of its {len(p.keypoints)} frames); "
            "not translated")


def translate(stage, inputs: list[Prepared], *, num_beams: int = 5, max_new_tokens: int = 64,
              max_frames: int = 300, device: str = "cpu", long_inputs: str = "truncate") -> list[str]:
    """Decode prepared inputs with a loaded stage (`rvlf.train.inference.load_stage`); inputs
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
        return stage.translate(batch, num_beams, max_new_tokens)


def overlay_frames(source: Path, keypoints: np.ndarray, boxes: np.ndarray | None, text: str = ""):
    """RGB frames of `source` with the keypoints, crop boxes and `text` (on a dark band at the
    bottom; OpenCV draws ASCII only, so other text is left off) drawn over each frame."""
    import cv2

    from rvlf.data.video import iter_frames

    caption = " ".join(text.split())[:80]
    if not caption.isascii():
        caption = ""
    for t, frame in enumerate(iter_frames(source)):
        img = np.ascontiguousarray(frame)
        if t < len(keypoints):
            for name, sl in PARTS.items():
                for x, y, c in keypoints[t, sl]:
                    if c > 0.3:
                        cv2.circle(img, (int(x), int(y)), 2, PART_COLOURS[name], -1)
            if boxes is not None:
                for (x0, y0, x1, y1), colour in zip(boxes[t], BOX_COLOURS):
                    if x1 > x0:
                        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), colour, 2)
        if caption:
            h = img.shape[0]
            cv2.rectangle(img, (0, h - 30), (img.shape[1], h), (0, 0, 0), -1)
            cv2.putText(img, caption, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        yield img


def draw_overlay(source: Path, keypoints: np.ndarray, boxes: np.ndarray | None, out: str | Path, text: str = "") -> Path:
    """Write `source` with the keypoints, crop boxes and the translation drawn over each frame as a
    video every browser plays (`write_browser_video`: H.264 mp4, else VP9 WebM; the returned path's
    suffix says which), at the source's frame rate (25 for images). Written under a temporary name,
    then renamed."""
    from rvlf.data.video import video_fps, write_browser_video

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = video_fps(source) or 25.0
    frames = overlay_frames(source, keypoints, boxes, text)
    try:
        written = write_browser_video(frames, fps, out.with_name(f".{out.stem}.tmp"))
    except RvlfError:
        raise InputFileError(source, "no frames to draw on") from None
    final = out.with_suffix(written.suffix)
    written.replace(final)
    return final
