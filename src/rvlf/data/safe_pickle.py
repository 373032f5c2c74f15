"""Reading `.pkl` files without running their code.

`pickle` can call any importable function while loading, so a downloaded `.pkl` (CSL-Daily
labels, rtmlib/Uni-Sign keypoints, GFSLT-VLP/Uni-Sign label files) is read through an unpickler
whose `find_class` admits only what NumPy array reconstruction needs; dicts, lists, tuples,
numbers, strings and bytes need no lookup at all. Any other global is refused before it can be
called; torch tensors (SLRT / Joey NMT feature pickles) get a line of their own. Gzip-compressed
pickles (the label files) are decompressed on the fly.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from rvlf.errors import InputFileError

_NUMPY_CORE = np._core if hasattr(np, "_core") else np.core  # NumPy 2 renamed numpy.core

# (module, name) -> object; both NumPy 1 and NumPy 2 spellings are written by real files.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles carry bytes this way
}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _NUMPY_CORE.multiarray._reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _NUMPY_CORE.multiarray.scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _NUMPY_CORE.numeric._frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            if module.split(".")[0] == "torch":
                raise InputFileError(
                    self._path,
                    f"holds torch tensors (`{module}.{name}`), not plain data: refused (a pickle can run code). "
                    "SLRT / Joey NMT files carry precomputed features this way; rvlf reads label files of "
                    "names and texts (GFSLT-VLP / Uni-Sign `labels.*`) and its own .npz features",
                ) from None
            raise InputFileError(
                self._path,
                f"refused to load `{module}.{name}` from a pickle (only NumPy arrays, dicts, lists, "
                "tuples, numbers and strings are allowed)",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise InputFileError(self._path, "refused a pickle with persistent ids")


def safe_load(path: str | Path) -> Any:
    """Unpickle `path` (plain or gzip-compressed) admitting only NumPy arrays, dicts, lists,
    tuples, numbers and strings. Raises `InputFileError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            return _RestrictedUnpickler(f, path).load()
        except InputFileError:
            raise
        except (gzip.BadGzipFile, zlib.error, EOFError) as err:
            what = "truncated or corrupt gzip data" if gzipped else "truncated pickle"
            raise InputFileError(path, f"not a readable pickle ({what}: {err or type(err).__name__})") from None
        except Exception as err:  # corrupt: UnpicklingError, ValueError, ...
            raise InputFileError(path, f"not a readable pickle ({type(err).__name__}: {err})") from None
