"""A model argument (`--checkpoint`, `rvlf export CHECKPOINT --out DIR`) checked before torch loads.

`rvlf export`, `evaluate` and `app` import torch and transformers (seconds) before they read a
checkpoint; a mistyped path was reported only after that. These checks need only `os.stat`, so a
path that cannot be a model is one error line at once. They accept exactly what the loaders
accept (`rvlf.inference.api.resolve_pretrained`, `rvlf.inference.export.checkpoint_dir`,
`rvlf.train.checkpoint.resolve_checkpoint`) and leave everything else to them: a hub id
(`owner/name` that is no local path), and a checkpoint whose save was killed between its two
renames (`DIR.old` beside a missing `DIR`, put back by `resolve_checkpoint`).
"""

from __future__ import annotations

import re
from pathlib import Path

from rvlf.errors import InputFileError, RvlfError

# the names the loaders use; kept equal to theirs by tests/test_export.py (importing them loads torch)
STATE_FILE = "trainer_state.json"  # rvlf.train.checkpoint.STATE_FILE: a training checkpoint
EXPORT_FILE = "rvlf_model.json"  # rvlf.inference.model_folder.EXPORT_FILE: an exported model folder
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")  # rvlf.inference.api._HUB_ID


def is_model_folder(folder: Path) -> bool:
    """An export, a checkpoint, or a run folder with a `best` or `last` checkpoint."""
    return (folder / EXPORT_FILE).is_file() or any((folder / sub / STATE_FILE).is_file() for sub in ("", "best", "last"))


def check_model_arg(text: str, *, hub: bool = True) -> None:
    """Raise `InputFileError` (one line naming the path) when `text` cannot name a model: a file, a
    folder that holds no export, checkpoint or run, or (unless `hub` and `text` has the form of a hub
    id `owner/name`) a path that does not exist. What might be a model is left to the loaders."""
    local = Path(text).expanduser()
    if local.is_dir():
        if not is_model_folder(local):
            raise InputFileError(local, f"not a model folder: no {EXPORT_FILE} (an export), no {STATE_FILE} (a "
                                        f"checkpoint), no best/ or last/ checkpoint (a run folder)")
        return
    if local.exists():
        raise InputFileError(local, "is a file: give a model folder (exported or a checkpoint), a run folder"
                                    + (" or a hub id" if hub else ""))
    if (local.with_name(local.name + ".old") / STATE_FILE).is_file():  # a save killed mid-swap: the loader restores it
        return
    if hub and HUB_ID.match(text) and not text.startswith((".", "~")) and not Path(text).is_absolute():
        return
    raise InputFileError(local, "no such model folder" + (" (and not a hub id of the form owner/name)" if hub else ""))


def check_export_destination(out: str) -> None:
    """`rvlf export --out`: new, empty, or an earlier export (replaced), as
    `rvlf.inference.model_folder.check_destination` requires; `RvlfError` otherwise."""
    path = Path(out)
    if path.is_file():
        raise RvlfError(f"{path}: exists and is a file; give a folder to export to")
    if path.is_dir() and any(path.iterdir()) and not (path / EXPORT_FILE).is_file():
        raise RvlfError(f"{path}: folder exists and is not an rvlf model folder; choose a new or empty folder")
