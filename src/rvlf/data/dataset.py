"""Torch dataset over `SignSample`s and their feature files, and the padding collate.

A batch is a dict:
    ids        list[str]
    texts      list[str]                 reference translations
    keypoints  float [B,T,77,3]          part-normalised (x, y, confidence), zeros where missing
    frame_mask bool  [B,T]               True on real frames
    dino       float [B,T,3,D] or None   DINOv2 features of face, left hand, right hand
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rvlf.data.features import load_video_features
from rvlf.data.keypoints import normalize_keypoints
from rvlf.data.readers import SignSample
from rvlf.errors import InputFileError


def feature_path(sample: SignSample, features_dir: str | Path | None) -> Path:
    """Where a sample's features live: `<features_dir>/<id>.npz`, else the manifest's path."""
    if features_dir:
        return Path(features_dir) / f"{sample.id}.npz"
    if sample.features:
        return Path(sample.features)
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
    ):
        if not samples:
            raise InputFileError(features_dir or "dataset", "no samples in this split")
        self.samples = list(samples)
        self.features_dir = features_dir
        self.max_frames = max_frames
        self.use_dino = use_dino
        self.preload = preload
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, i: int) -> dict:
        if i in self._cache:
            return self._cache[i]
        sample = self.samples[i]
        path = feature_path(sample, self.features_dir)
        if not path.is_file():
            raise InputFileError(path, f"feature file of sample {sample.id!r} not found (run `rvlf extract`)")
        feats = load_video_features(path)
        kp = feats["keypoints"][: self.max_frames]
        if kp.shape[0] == 0:
            raise InputFileError(path, "no frames")
        item = {"keypoints": normalize_keypoints(kp).astype(np.float32)}
        if self.use_dino and "dino" in feats:
            item["dino"] = np.asarray(feats["dino"][: self.max_frames], dtype=np.float16)
        if self.preload:
            self._cache[i] = item
        return item

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
