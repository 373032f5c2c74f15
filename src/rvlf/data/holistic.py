"""MediaPipe Holistic per frame -> `[543,3]` pixel keypoints (Sec. 6.1's whole-body keypoints).

The paper uses MMPose; we ship MediaPipe Holistic (its wheel bundles the models, so nothing is
downloaded); `rvlf.data.extract` converts its 543 points to the 77-point layout with
`rvlf.data.keypoints.from_holistic`. MediaPipe's `left_hand_landmarks` is the signer's own
left hand (its wrist sits on pose landmark 15, LEFT_WRIST), as in COCO-WholeBody.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Iterator

import numpy as np

from rvlf.errors import RvlfError

NUM_HOLISTIC = 543  # pose 33, face 468, left hand 21, right hand 21
_PARTS = (("pose_landmarks", 33), ("face_landmarks", 468), ("left_hand_landmarks", 21), ("right_hand_landmarks", 21))


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null: MediaPipe's C++ (absl, glog, TFLite) logs there,
    ignoring GLOG_minloglevel/TF_CPP_MIN_LOG_LEVEL in this release, sometimes from its own
    threads between calls, so wrap a whole loop over frames in it to silence everything."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


MISSING = ("MediaPipe is not installed: keypoints from video need it (pip install 'rvlf[mediapipe]', "
           "MediaPipe 0.10.14); keypoints you already have (.pose, .npz, rtmlib .pkl) need no MediaPipe: "
           "rvlf extract VIDEO --keypoints FILE, or give the file to rvlf translate")


def require_mediapipe() -> None:
    """Raise `RvlfError` (one line: what to install) when MediaPipe cannot be imported."""
    if importlib.util.find_spec("mediapipe") is None:
        raise RvlfError(MISSING)


class HolisticExtractor:
    """MediaPipe Holistic, one frame at a time; use as a context manager.

    `static_image_mode=False` (default) tracks across the frames of one video; call `reset()`
    between videos. Use `True` for unrelated single images. Creation, `process` and `close`
    run under `quiet_stderr()`.
    """

    def __init__(self, model_complexity: int = 1, static_image_mode: bool = False):
        require_mediapipe()
        with quiet_stderr():
            # MediaPipe (optional extra 'mediapipe'): only for keypoints from video; it prints to stderr on import
            from mediapipe.python.solutions.holistic import Holistic

            self._model = Holistic(static_image_mode=static_image_mode, model_complexity=model_complexity)

    def __enter__(self) -> HolisticExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._model is not None:
            with quiet_stderr():
                self._model.close()
            self._model = None

    def reset(self) -> None:
        """Forget the tracking state (start of a new video)."""
        with quiet_stderr():
            self._model.reset()

    def process(self, frame: np.ndarray) -> np.ndarray:
        """RGB `uint8 [H,W,3]` -> `float32 [543,3]`: (x, y) in pixels and a confidence (pose:
        MediaPipe's visibility; face and hands: 1). A part that was not found is all zeros."""
        frame = np.ascontiguousarray(frame)
        h, w = frame.shape[:2]
        with quiet_stderr():
            result = self._model.process(frame)
        out = np.zeros((NUM_HOLISTIC, 3), dtype=np.float32)
        start = 0
        for name, n in _PARTS:
            landmarks = getattr(result, name)
            if landmarks is not None:
                pts = np.array([(p.x, p.y, p.visibility) for p in landmarks.landmark], dtype=np.float32)
                out[start:start + n, :2] = pts[:, :2] * (w, h)
                out[start:start + n, 2] = pts[:, 2] if name == "pose_landmarks" else 1.0
            start += n
        return out

