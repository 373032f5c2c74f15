"""Where a model is and where one may be exported to, from the paths alone (torch-free).

The names that mark a model folder (`EXPORT_FILE`, the checkpoints' `STATE_FILE`), the form of a hub id
(`looks_like_hub_id`), and the checks of a model argument (`check_model_arg`: `--checkpoint`,
`rvlf export CHECKPOINT`) and an export destination (`check_destination`). `rvlf export`, `evaluate`,
`translate` and `app` make them before torch and transformers load (seconds), so a mistyped path is
one error line at once; `rvlf.inference.model_folder` and `rvlf.inference.api` use the same pieces.
`check_model_arg` accepts exactly what the loaders accept (`rvlf.inference.api.resolve_pretrained`,
`rvlf.inference.export.checkpoint_dir`, `rvlf.train.checkpoint.resolve_checkpoint`) and leaves
everything else to them: a hub id (`owner/name` that is no local path), and a checkpoint whose save
was killed between its two renames (`DIR.old` beside a missing `DIR`, put back by `resolve_checkpoint`).
"""

from __future__ import annotations

import re
from pathlib import Path

from rvlf.errors import InputFileError, RvlfError

STATE_FILE = "trainer_state.json"  # = rvlf.train.checkpoint.STATE_FILE (a test keeps them equal): a checkpoint
EXPORT_FILE = "rvlf_model.json"  # an exported model folder (`rvlf.inference.model_folder`)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def looks_like_hub_id(text: str) -> bool:
    """`owner/name` as the Hugging Face hub spells a repo id, and not a path (`./x/y`, `~/x`, `/x/y`)."""
    return bool(HUB_ID.match(text)) and not text.startswith((".", "~")) and not Path(text).is_absolute()


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
    if hub and looks_like_hub_id(text):
        return
    raise InputFileError(local, "no such model folder" + (" (and not a hub id of the form owner/name)" if hub else ""))


def check_destination(out: str | Path) -> Path:
    """An export's destination (`rvlf export --out`, `save_pretrained`) must be new, empty, or an earlier
    export (replaced): never someone's other files. `RvlfError` otherwise."""
    out = Path(out)
    if out.is_file():
        raise RvlfError(f"{out}: exists and is a file; give a folder to export to")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_FILE).is_file():
        raise RvlfError(f"{out}: folder exists and is not an rvlf model folder; choose a new or empty folder")
    return out
