"""Atomic, safetensors-only checkpoints.

A checkpoint is a folder:

    model.safetensors        weights (only what the stage trains or needs to rebuild itself)
    optimizer.safetensors    optimizer tensors (flattened), with optimizer.json for the rest
    rng.safetensors          torch RNG state; python / numpy RNG state in trainer_state.json
    trainer_state.json       step, epoch, batch position, best score, scheduler state, ...
    config.yaml              the full run configuration
    tokenizer/ ...           whatever the stage saves beside (tokenizer, base LM, ...)

It is written under a temporary name in the same parent folder and renamed into place, so a
run killed at any moment leaves either the previous checkpoint or the new one, never half of
one. Nothing here unpickles: tensors come from safetensors, the rest from JSON/YAML.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rvlf.errors import InputFileError

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.json"


def _contiguous(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in sd.items()}


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Write a state dict as safetensors, cloning tensors that share storage (tied weights)."""
    seen: dict[int, str] = {}
    out: dict[str, torch.Tensor] = {}
    for k, v in _contiguous(state_dict).items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone() if ptr in seen else v
        if ptr != -1:
            seen[ptr] = k
    save_file(out, str(path))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "checkpoint weights not found")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise InputFileError(path, f"not a readable safetensors file ({err})") from None


# --- optimizer state <-> safetensors + JSON -------------------------------------------------

def optimizer_to_safetensors(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split `optimizer.state_dict()` into flat tensors and a JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt_state["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{pid}.{key}"] = val
            else:
                scalars.setdefault(str(pid), {})[key] = val
    return _contiguous(tensors), {"param_groups": opt_state["param_groups"], "scalars": scalars}


def optimizer_from_safetensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


# --- RNG ------------------------------------------------------------------------------------

def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "numpy" in meta:
        kind, keys, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "python" in meta:
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))


# --- the checkpoint folder ------------------------------------------------------------------

def save_checkpoint(
    directory: str | Path,
    *,
    model_state: dict[str, torch.Tensor],
    trainer_state: dict,
    config_yaml: str | None = None,
    optimizer_state: dict | None = None,
    with_rng: bool = True,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (temp folder + rename). Returns the final path.

    `extra(tmp_dir)` may write more files (tokenizer, base LM, plots) into the folder first.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        save_weights(tmp / MODEL_FILE, model_state)
        state = dict(trainer_state)
        if optimizer_state is not None:
            tensors, meta = optimizer_to_safetensors(optimizer_state)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "optimizer.json").write_text(json.dumps(meta))
        if with_rng:
            tensors, meta = rng_state()
            save_file(_contiguous(tensors), str(tmp / "rng.safetensors"))
            state["rng"] = meta
        if config_yaml is not None:
            (tmp / "config.yaml").write_text(config_yaml)
        if extra is not None:
            extra(tmp)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        _fsync_dir(tmp)
        _swap_into_place(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def _swap_into_place(tmp: Path, directory: Path) -> None:
    """Replace `directory` by `tmp`. A crash between the two renames leaves `<dir>.old`,
    which `resolve_checkpoint` recovers."""
    old = directory.with_name(directory.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(directory: str | Path) -> Path:
    """The checkpoint folder to read, recovering from a crash mid-swap; clear error if none."""
    directory = Path(directory)
    if not (directory / STATE_FILE).is_file():
        old = directory.with_name(directory.name + ".old")
        if (old / STATE_FILE).is_file() and not directory.exists():
            os.replace(old, directory)
        elif directory.is_dir() and (directory / "last" / STATE_FILE).is_file():
            return directory / "last"
        else:
            raise InputFileError(directory, "not a checkpoint folder (no trainer_state.json)")
    return directory


def load_trainer_state(directory: str | Path) -> dict:
    path = Path(directory) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"unreadable trainer state ({err})") from None


def load_optimizer_state(directory: str | Path) -> dict | None:
    directory = Path(directory)
    if not (directory / "optimizer.safetensors").is_file():
        return None
    meta = json.loads((directory / "optimizer.json").read_text())
    return optimizer_from_safetensors(load_file(str(directory / "optimizer.safetensors")), meta)


def restore_rng(directory: str | Path, trainer_state: dict) -> None:
    path = Path(directory) / "rng.safetensors"
    if path.is_file():
        set_rng_state(load_file(str(path)), trainer_state.get("rng", {}))
