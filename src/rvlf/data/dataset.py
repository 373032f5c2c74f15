"""Torch dataset over `SignSample`s and their feature files, and the padding collate.

A batch is a dict:
    ids        list[str]
    texts      list[str]                 reference translations
    keypoints  float [B,T,77,3]          part-normalised (x, y, confidence), zeros where missing
    frame_mask bool  [B,T]               True on real frames
    dino       float [B,T,3,D] or None   DINOv2 features of face, left hand, right hand

Sequences longer than `max_frames` (300, Sec. 7.1) are cut by the `long_inputs` policy
(`select_frames`): `truncate` keeps the first `max_frames` frames (the paper), `subsample` keeps
`max_frames` frames spread evenly over the whole sequence (as GFSLT-VLP and Uni-Sign sample, but
deterministic). Training, `rvlf evaluate` and `rvlf translate` use the same function.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rvlf.data.checks import feature_summary, sample_feature_file
from rvlf.data.features import load_video_features
from rvlf.data.keypoints import normalize_keypoints
from rvlf.data.readers import SignSample
from rvlf.errors import ConfigError, InputFileError

log = logging.getLogger("rvlf.data")

LONG_INPUTS = ("truncate", "subsample")


def check_long_inputs(policy: str) -> str:
    """`policy` if it is one of `LONG_INPUTS`, else `ConfigError` (data.long_inputs)."""
    if policy not in LONG_INPUTS:
        raise ConfigError(f"data.long_inputs must be one of {', '.join(LONG_INPUTS)}, got {policy!r}")
    return policy


def select_frames(num_frames: int, max_frames: int, policy: str = "truncate") -> np.ndarray:
    """Indices `int64 [min(num_frames, max_frames)]` of the frames a sequence keeps.

    `truncate`: `0 .. max_frames-1` (Sec. 7.1). `subsample`: `max_frames` indices spread evenly
    from the first frame to the last (`round(linspace(0, T-1, max_frames))`, strictly increasing).
    Sequences of at most `max_frames` frames keep every frame under both policies.
    """
    check_long_inputs(policy)
    if max_frames < 1:
        raise ConfigError(f"data.max_frames must be >= 1, got {max_frames}")
    if num_frames <= max_frames:
        return np.arange(num_frames)
    if policy == "truncate":
        return np.arange(max_frames)
    return np.rint(np.linspace(0, num_frames - 1, max_frames)).astype(np.int64)


def long_input_note(name: str, num_frames: int, max_frames: int, policy: str) -> str | None:
    """One line saying how many frames a long input loses under `policy` (None if it fits)."""
    if num_frames <= max_frames:
        return None
    dropped = num_frames - max_frames
    how = (f"kept frames 1-{max_frames}" if policy == "truncate"
           else f"kept {max_frames} frames spread over all {num_frames}")
    return (f"{name}: {num_frames} frames, longer than data.max_frames={max_frames}: {how}, "
            f"dropped {dropped} (data.long_inputs={policy})")


@dataclass
class InputReport:
    """What `SignDataset.input_report` found: samples without a signer, and long ones."""

    samples: int = 0
    no_body: list[str] = field(default_factory=list)  # ids whose body is found in no frame
    long: list[str] = field(default_factory=list)     # ids longer than max_frames
    missing: int = 0                                  # feature files not found (reported when loaded)

    def line(self, split: str, max_frames: int, policy: str) -> str:
        return (f"{split}: {self.samples} samples; {len(self.no_body)} without a signer (body found in no frame); "
                f"{len(self.long)} longer than {max_frames} frames ({policy})")


def feature_path(sample: SignSample, features_dir: str | Path | None) -> Path:
    """Where a sample's features live: under `features_dir` (`<id>.npz`, or where `rvlf extract`
    put it, see `rvlf.data.checks.find_feature_file`), else the manifest's path."""
    path = sample_feature_file(sample, features_dir)
    if path is not None:
        return path
    raise InputFileError(sample.id, "no features path: set data.features_dir or give `features` in the manifest")


class SignDataset(Dataset):
    """Samples -> (normalised keypoints, DINOv2 features, text), cut to `max_frames` (Sec. 7.1)."""

    def __init__(
        self,
        samples: list[SignSample],
        features_dir: str | Path | None = None,
        *,
        max_frames: int = 300,
        use_dino: bool = True,
        preload: bool = True,
        long_inputs: str = "truncate",
    ):
        if not samples:
            raise InputFileError(features_dir or "dataset", "no samples in this split")
        self.samples = list(samples)
        self.features_dir = features_dir
        self.max_frames = max_frames
        self.long_inputs = check_long_inputs(long_inputs)
        self.use_dino = use_dino
        self.preload = preload
        self._cache: dict[int, dict] = {}
        self._frames: dict[int, int] = {}  # frame counts read by input_report / lengths

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, i: int) -> dict:
        if i in self._cache:
            return self._cache[i]
        path = self._feature_file(i)
        feats = load_video_features(path)
        keep = select_frames(feats["keypoints"].shape[0], self.max_frames, self.long_inputs)
        kp = feats["keypoints"][keep]
        if kp.shape[0] == 0:
            raise InputFileError(path, "no frames")
        item = {"keypoints": normalize_keypoints(kp).astype(np.float32)}
        if self.use_dino and "dino" in feats:
            item["dino"] = np.asarray(feats["dino"][keep], dtype=np.float16)
        if self.preload:
            self._cache[i] = item
        return item

    def _feature_file(self, i: int) -> Path:
        """Sample `i`'s feature file; `InputFileError` naming it when it is not there."""
        sample = self.samples[i]
        path = feature_path(sample, self.features_dir)
        if not path.is_file():
            raise InputFileError(path, f"feature file of sample {sample.id!r} not found (run `rvlf extract`)")
        return path

    def input_report(self) -> InputReport:
        """Count the samples whose body is found in no frame and those longer than `max_frames`
        (from each feature file's `meta`, see `feature_summary`); missing files are only counted."""
        report = InputReport(samples=len(self.samples))
        for i, sample in enumerate(self.samples):
            try:
                path = feature_path(sample, self.features_dir)
            except InputFileError:
                report.missing += 1
                continue
            if not path.is_file():
                report.missing += 1
                continue
            frames, share = feature_summary(path)
            self._frames[i] = frames
            if share == 0.0:
                report.no_body.append(sample.id)
            if frames > self.max_frames:
                report.long.append(sample.id)
        return report

    def lengths(self) -> list[int]:
        """Frames each sample gives the model (at most `max_frames`; what `train.group_by_length`
        groups by), as `input_report` counted them: from each feature file's `meta` where `rvlf
        extract` wrote it, else from its keypoints. Raises `InputFileError` for a missing or
        unreadable file."""
        for i in range(len(self.samples)):
            if i not in self._frames:
                self._frames[i] = feature_summary(self._feature_file(i))[0]
        return [min(self._frames[i], self.max_frames) for i in range(len(self.samples))]

    def log_input_report(self, split: str) -> InputReport:
        """`input_report`, logged as one line (by the main process of a multi-process run)."""
        report = self.input_report()
        if os.environ.get("RANK", "0") == "0":
            log.info("rvlf data: %s", report.line(split, self.max_frames, self.long_inputs))
            if report.no_body:
                shown = ", ".join(report.no_body[:5]) + (" ..." if len(report.no_body) > 5 else "")
                log.warning("rvlf data: %s: %d samples without a signer (body found in no frame): %s",
                            split, len(report.no_body), shown)
        return report

    def __getitem__(self, i: int) -> dict:
        sample = self.samples[i]
        item = self._load(i)
        return {"id": sample.id, "text": sample.text, **item}


def collate(items: list[dict]) -> dict:
    """Pad a list of dataset items to the longest sequence."""
    b = len(items)
    t = max(it["keypoints"].shape[0] for it in items)
    keypoints = torch.zeros(b, t, *items[0]["keypoints"].shape[1:], dtype=torch.float32)
    frame_mask = torch.zeros(b, t, dtype=torch.bool)
    has_dino = all("dino" in it for it in items)
    dino = torch.zeros(b, t, *items[0]["dino"].shape[1:], dtype=torch.float32) if has_dino else None
    for i, it in enumerate(items):
        n = it["keypoints"].shape[0]
        keypoints[i, :n] = torch.from_numpy(it["keypoints"])
        frame_mask[i, :n] = True
        if dino is not None:
            dino[i, :n] = torch.from_numpy(it["dino"].astype(np.float32))
    return {
        "ids": [it["id"] for it in items],
        "texts": [it["text"] for it in items],
        "keypoints": keypoints,
        "frame_mask": frame_mask,
        "dino": dino,
    }
