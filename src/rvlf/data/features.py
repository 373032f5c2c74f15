"""DINOv2 crop features (Sec. 3.2, 6.2) and the per-video feature file.

`DinoEncoder` maps 224x224 RGB crops to one vector each: the CLS token of the last layer after
DINOv2's final layer norm (`Dinov2Model`'s `pooler_output`), DINOv2's global image descriptor.
Crops are already 224x224, so preprocessing is only ImageNet mean/std normalisation (the
processor's resize + centre crop would be the identity up to interpolation).

A feature file (`.npz`, no pickle) holds `keypoints float32 [T,77,3]` (pixels), optionally
`dino float16 [T,3,D]` (face, left hand, right hand) and `meta`, a JSON string.
`read_feature_header` gives its shapes from the `.npy` headers inside the zip, decoding no array
(what the fail-fast check of a whole feature set reads); `load_video_features` reads it all.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rvlf import atomic
from rvlf.data.keypoints import NUM_POINTS
from rvlf.device import resolve_device
from rvlf.errors import InputFileError, RvlfError
from rvlf.hubcheck import use_cache_if_hub_unreachable

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SIZE = 224


@contextlib.contextmanager
def _no_hf_progress_bars() -> Iterator[None]:
    """Hide transformers' per-load progress bars (extraction has its own), then restore them."""
    # transformers: only around a DINOv2 load or save (see DinoEncoder)
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def inference_dtype(device: str = "cpu") -> torch.dtype:
    """The dtype in which DINOv2 encodes crops for inference (`rvlf translate`, the API, the app):
    `torch.bfloat16` on a CPU with native bf16 kernels (AVX512-BF16 or AMX, as oneDNN reports it),
    else `torch.float32` (CUDA included: `rvlf extract` picks its own dtype). `RVLF_DINO_DTYPE`
    (`float32`, `bfloat16` or `auto`, the default) overrides it.

    Measured (benchmarks/results.md, section 10, and benchmarks/analysis.md): on a Xeon with AMX,
    DINOv2-base encodes crops about 3.5x faster in bf16 (2.5-3.6x); the CLS features of bf16 and float32
    differ by cosine < 0.0001 (the bar is 0.999: min 0.99997 over 10,206 demo crops with the demo's
    DINOv2), and the demo's test translations from bf16 features equal the float32 ones (16 of 16;
    94 of 96 over all splits). Training features (`rvlf extract`) stay float32 on CPU. Raises
    `RvlfError` for another `RVLF_DINO_DTYPE`."""
    import torch  # deferred on purpose (see DinoEncoder)

    choice = os.environ.get("RVLF_DINO_DTYPE", "auto").strip().lower() or "auto"
    if choice in ("float32", "fp32"):
        return torch.float32
    if choice in ("bfloat16", "bf16"):
        return torch.bfloat16
    if choice != "auto":
        raise RvlfError(f"RVLF_DINO_DTYPE must be float32, bfloat16 or auto, got {choice!r}")
    if not str(device).startswith("cpu"):
        return torch.float32
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        native = False
    return torch.bfloat16 if native else torch.float32


class DinoEncoder:
    """A DINOv2 backbone (hub id or local folder) encoding crops in batches, without gradients."""

    def __init__(
        self,
        name_or_path: str = "facebook/dinov2-base",
        device: str = "cpu",
        batch_size: int = 32,
        dtype: torch.dtype | None = None,
    ):
        # heavy optional libraries deferred on purpose: `rvlf data check` and `rvlf --help` read
        # feature headers from this module without loading torch or transformers
        import torch
        from transformers import Dinov2Model

        device = resolve_device(device)
        if batch_size < 1:
            raise RvlfError(f"batch size must be >= 1, got {batch_size}")
        dtype = torch.float32 if dtype is None else dtype
        local = Path(name_or_path).expanduser()
        if local.exists() and not local.is_dir():  # a local file is never a hub id: no download hint
            raise RvlfError(f"{name_or_path}: a file, not a DINOv2 model folder (give the folder that holds its "
                            "config.json and weights, or a hub id)")
        if (local.is_absolute() or str(name_or_path).startswith(".")) and not local.is_dir():
            raise RvlfError(f"DINOv2 model folder {name_or_path} does not exist")
        offline = use_cache_if_hub_unreachable(name_or_path)  # no network: the cache in seconds, not retries
        try:
            with _no_hf_progress_bars():
                model = Dinov2Model.from_pretrained(str(name_or_path), dtype=dtype)
        except (OSError, ValueError) as err:
            raise RvlfError(
                f"cannot load DINOv2 model {name_or_path!r} (a hub id needs the network or the hub cache"
                + (", and the hub is offline or cannot be reached" if offline else "")
                + f": download it once with `hf download {name_or_path}` or pass a local folder, --dino DIR): "
                f"{str(err).splitlines()[0]}"
            ) from None
        self.name = str(name_or_path)
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        self.model = model.to(self.device).eval()
        self.dim: int = model.config.hidden_size
        # x/255 - mean) / std == x * scale + shift, applied channel-last before the permute (contiguous: ~3x faster)
        std = torch.tensor(IMAGENET_STD, device=self.device)
        self._scale = 1.0 / (255.0 * std)
        self._shift = -torch.tensor(IMAGENET_MEAN, device=self.device) / std

    def encode(self, images: np.ndarray) -> np.ndarray:
        """`uint8 [N,224,224,3]` RGB -> `float32 [N,D]` (normalised CLS token)."""
        import torch  # loaded by __init__ already

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise RvlfError(
                f"DinoEncoder.encode: expected uint8 [N,H,W,3] images, got {images.dtype} {list(images.shape)}"
            )
        out = np.empty((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                x = torch.from_numpy(images[i:i + self.batch_size]).to(self.device).float()
                x = torch.addcmul(self._shift, x, self._scale).permute(0, 3, 1, 2).to(self.dtype)
                cls = self.model(pixel_values=x).pooler_output
                out[i:i + len(x)] = cls.float().cpu().numpy()
        return out


def save_tiny_dinov2(
    path: str | Path,
    hidden_size: int = 32,
    num_hidden_layers: int = 1,
    num_attention_heads: int = 2,
    intermediate_size: int = 64,
    patch_size: int = 14,
    image_size: int = 224,
    seed: int = 0,
) -> Path:
    """Save a random-initialised DINOv2 with `save_pretrained` (tests and the demo load it by path)."""
    import torch  # heavy optional libraries deferred on purpose (see DinoEncoder)
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        patch_size=patch_size,
        image_size=image_size,
    )
    torch.manual_seed(seed)
    path = Path(path)
    with _no_hf_progress_bars():
        Dinov2Model(config).save_pretrained(path)
    return path


def save_video_features(path: str | Path, keypoints: np.ndarray, dino: np.ndarray | None, meta: dict) -> Path:
    """Write one video's features atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_POINTS, 3):
        raise RvlfError(f"save_video_features: keypoints must be [T,{NUM_POINTS},3], got {list(kp.shape)}")
    arrays = {"keypoints": kp, "meta": np.array(json.dumps(meta))}
    if dino is not None:
        dino = np.asarray(dino)
        if dino.ndim != 3 or dino.shape[:2] != (kp.shape[0], 3):
            raise RvlfError(f"save_video_features: dino must be [{kp.shape[0]},3,D], got {list(dino.shape)}")
        arrays["dino"] = dino.astype(np.float16)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic.write_file(path, write, what="the feature file")  # WriteError naming it when the disk refuses


# what reading a cut, empty or foreign .npz can raise, in NumPy and zipfile
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, zlib.error,
               UnicodeDecodeError, NotImplementedError)


def _unreadable(path: Path, err: BaseException) -> InputFileError:
    """One line for a feature file that cannot be read: empty, cut, not a zip, corrupt."""
    if isinstance(err, FileNotFoundError):
        return InputFileError(path, "feature file not found")
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size == 0:
        return InputFileError(path, "empty file (0 bytes): not a feature file (an interrupted copy or extraction?)")
    if isinstance(err, zipfile.BadZipFile) and not zipfile.is_zipfile(path):
        return InputFileError(path, f"not a readable .npz: cut short or not a zip file ({size} bytes)")
    return InputFileError(path, f"corrupt feature file ({type(err).__name__}: {err})")


@dataclass(frozen=True)
class FeatureHeader:
    """Shapes of one feature file: `frames` = T of `keypoints [T,77,3]`, `dino_dim` = D of
    `dino [T,3,D]` or None when the file has no DINOv2 features."""

    path: Path
    frames: int
    dino_dim: int | None
    dino_model: str | None = None        # meta.dino_model: the DINOv2 given to `rvlf extract --dino`
    dino_fingerprint: str | None = None  # meta.dino_fingerprint (rvlf.data.dino_id.fingerprint)


# the header NumPy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (T, 77, 3), } (parsed without `ast`)
_NPY_HEADER = re.compile(r"\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': (?:True|False), 'shape': \(([\d, ]*)\), \}")


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a member's .npy header; checks the member holds exactly that many bytes."""
    with zf.open(info) as f:
        head = f.read(12)
        if head[:6] != b"\x93NUMPY" or len(head) < 10:
            raise ValueError(f"array {info.filename!r} is not a .npy array")
        wide = head[6] >= 2
        size = int.from_bytes(head[8:12] if wide else head[8:10], "little")
        start = 12 if wide else 10
        if len(head) < start or not len(head) - start <= size <= 100_000:
            raise ValueError(f"array {info.filename!r} has a malformed .npy header")
        text = (head[start:] + f.read(size - len(head) + start)).decode("utf-8" if head[6] >= 3 else "latin1")
    m = _NPY_HEADER.match(text)
    if m:
        dtype = np.dtype(m.group(1))
        shape = tuple(int(n) for n in m.group(2).replace(" ", "").split(",") if n)
    else:  # another writer's spelling: NumPy's own parser
        d = ast.literal_eval(text)
        if not isinstance(d, dict) or not {"descr", "shape"} <= set(d):
            raise ValueError(f"array {info.filename!r} has a malformed .npy header")
        dtype, shape = np.lib.format.descr_to_dtype(d["descr"]), tuple(int(n) for n in d["shape"])
    if dtype.hasobject:
        raise ValueError(f"array {info.filename!r} holds Python objects (pickled data is refused)")
    expected = start + size + math.prod(shape) * dtype.itemsize
    if info.file_size != expected:
        raise ValueError(f"array {info.filename!r} holds {info.file_size} bytes, its header says {expected}")
    return shape, dtype


def read_feature_header(path: str | Path) -> FeatureHeader:
    """Check one feature file from its zip directory and `.npy` headers, decoding no array.

    Checked: the file exists and is a zip; `keypoints` is a float array `[T,77,3]` with T >= 1;
    `dino`, if present, is a float array `[T,3,D]` (same T, D >= 1); `meta` is present; each
    array's size matches its header (a file cut inside an array is caught). Raises
    `InputFileError` naming the file and the problem. Costs a few small reads per file.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = _feature_members(zf, path)
            kp_shape, kp_dtype = _npy_header(zf, members["keypoints"])
            dino = _npy_header(zf, members["dino"]) if "dino" in members else None
            meta = _read_meta(zf, members["meta"], path) if dino is not None else {}
    except InputFileError:
        raise
    except _NPZ_ERRORS as err:
        raise _unreadable(path, err) from None
    if kp_dtype.kind != "f" or len(kp_shape) != 3 or kp_shape[1:] != (NUM_POINTS, 3):
        raise InputFileError(path, f"keypoints must be float [T,{NUM_POINTS},3], got {kp_dtype} {list(kp_shape)}")
    if kp_shape[0] < 1:
        raise InputFileError(path, f"no frames (keypoints {list(kp_shape)})")
    dino_dim = None
    if dino is not None:
        shape, dtype = dino
        if dtype.kind != "f" or len(shape) != 3 or shape[:2] != (kp_shape[0], 3) or shape[2] < 1:
            raise InputFileError(path, f"dino must be float [{kp_shape[0]},3,D], got {dtype} {list(shape)}")
        dino_dim = shape[2]
    model, fp = meta.get("dino_model"), meta.get("dino_fingerprint")
    return FeatureHeader(path, kp_shape[0], dino_dim, model if isinstance(model, str) else None,
                         fp if isinstance(fp, str) else None)


def _read_meta(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> dict:
    """The `meta` JSON object of an open feature file (a small string array; no pickle)."""
    shape, dtype = _npy_header(zf, info)  # a 0-d unicode array, its bytes read here: the header check decodes no array
    if dtype.kind != "U" or math.prod(shape) != 1 or dtype.itemsize > 50_000_000:
        raise InputFileError(path, f"meta must be one JSON string, got {dtype} {list(shape)}")
    with zf.open(info) as f:
        raw = f.read()[-dtype.itemsize:]
    meta = json.loads(raw.decode("utf-32-be" if dtype.byteorder == ">" else "utf-32-le").rstrip("\x00"))
    if not isinstance(meta, dict):
        raise InputFileError(path, "meta is not a JSON object")
    return meta


def _feature_members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The `.npy` members of an open feature file by array name; `InputFileError` unless it holds
    `keypoints` and `meta`."""
    members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
    if "keypoints" not in members or "meta" not in members:
        raise InputFileError(path, f"not an rvlf feature file (holds {sorted(members) or 'no arrays'})")
    return members


def read_feature_meta(path: str | Path) -> dict:
    """The `meta` dict of a feature file, reading no other array. Raises `InputFileError` naming the
    file when it is missing, empty, cut, not an rvlf feature file or its meta is not JSON."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_meta(zf, _feature_members(zf, path)["meta"], path)
    except InputFileError:
        raise
    except _NPZ_ERRORS as err:
        raise _unreadable(path, err) from None


def is_feature_file(path: str | Path) -> bool:
    """True for an `.npz` holding `keypoints` and `meta` (an rvlf feature file), from its zip
    directory only; `InputFileError` if the `.npz` cannot be read at all."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except _NPZ_ERRORS as err:
        raise _unreadable(path, err) from None
    return {"keypoints.npy", "meta.npy"} <= names


def load_video_features(path: str | Path) -> dict:
    """`{"keypoints": float32 [T,77,3], "dino": float16 [T,3,D] (if extracted), "meta": dict}`.

    Raises `InputFileError` naming the file when it is missing, empty, cut, not an rvlf feature
    file or holds arrays of the wrong shape.
    """
    path = Path(path)
    try:
        if not zipfile.is_zipfile(path):  # np.load would read a .npy, or fail on pickles, unhelpfully
            raise zipfile.BadZipFile("not a zip file") if path.exists() else FileNotFoundError(path)
        with np.load(path, allow_pickle=False) as z:
            if "keypoints" not in z.files or "meta" not in z.files:
                raise InputFileError(path, f"not an rvlf feature file (holds {sorted(z.files)})")
            out = {"keypoints": z["keypoints"].astype(np.float32), "meta": json.loads(str(z["meta"]))}
            if "dino" in z.files:
                out["dino"] = z["dino"].astype(np.float16)
    except InputFileError:
        raise
    except _NPZ_ERRORS as err:
        raise _unreadable(path, err) from None
    kp = out["keypoints"]
    if kp.ndim != 3 or kp.shape[1:] != (NUM_POINTS, 3):
        raise InputFileError(path, f"keypoints must be [T,{NUM_POINTS},3], got {list(kp.shape)}")
    if "dino" in out and (out["dino"].ndim != 3 or out["dino"].shape[:2] != (kp.shape[0], 3)):
        raise InputFileError(path, f"dino must be [{kp.shape[0]},3,D], got {list(out['dino'].shape)}")
    if not isinstance(out["meta"], dict):
        raise InputFileError(path, "meta is not a JSON object")
    return out
