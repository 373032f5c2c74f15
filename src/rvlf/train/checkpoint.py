"""Atomic, safetensors-only checkpoints.

A checkpoint is a folder:

    model.safetensors        weights (only what the stage trains or needs to rebuild itself)
    optimizer.safetensors    optimizer tensors (flattened), with optimizer.json for the rest
    rng.safetensors          torch RNG state of every process; python / numpy RNG state in
                             trainer_state.json (one entry per process)
    trainer_state.json       step, epoch, batch position, best score, scheduler state, ...
    config.yaml              the full run configuration
    tokenizer/ ...           whatever the stage saves beside (tokenizer, base LM, ...)

It is written under a temporary name (`.<name>.tmp-*`) in the same parent folder and swapped
into place (`rvlf.atomic.write_dir`: an atomic exchange on Linux, two renames elsewhere, the
previous checkpoint parked at `<dir>.old` meanwhile), so a run killed at any moment
leaves either the previous checkpoint or the new one, never half of one; a temporary folder
left by a kill mid-write is never read and is removed by the next save (only a dead process's:
the temporary name carries the writer's pid and host, `rvlf.atomic`). A full disk, read-only file
system or denied permission raises `WriteError` naming the folder, the previous checkpoint kept.
Nothing here unpickles: tensors come from safetensors, the rest from JSON/YAML.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rvlf import atomic
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

RngState = tuple[dict[str, torch.Tensor], dict]


def rng_state() -> RngState:
    """This process's torch (CPU and CUDA), numpy and python RNG states."""
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


def load_rng(directory: str | Path, trainer_state: dict, rank: int = 0) -> RngState | None:
    """Process `rank`'s saved RNG state, or None when the checkpoint has none for it."""
    path = Path(directory) / "rng.safetensors"
    if not path.is_file():
        return None
    tensors = load_file(str(path))
    metas = trainer_state.get("rng", [])
    if isinstance(metas, dict):  # a single-process checkpoint of the first format
        return (tensors, metas) if rank == 0 and "torch" in tensors else None
    prefix = f"{rank}."
    mine = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if "torch" not in mine or rank >= len(metas):
        return None
    return mine, metas[rank]


def restore_rng(directory: str | Path, trainer_state: dict, rank: int = 0) -> bool:
    """Restore process `rank`'s RNG state from a checkpoint; False if it holds none for it."""
    state = load_rng(directory, trainer_state, rank)
    if state is not None:
        set_rng_state(*state)
    return state is not None


# --- the checkpoint folder ------------------------------------------------------------------

def save_checkpoint(
    directory: str | Path,
    *,
    model_state: dict[str, torch.Tensor],
    trainer_state: dict,
    config_yaml: str | None = None,
    optimizer_state: dict | None = None,
    with_rng: bool = True,
    rng_states: list[RngState] | None = None,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (temp folder + swap). Returns the final path.

    `rng_states`: every process's `rng_state()`, by rank (default with `with_rng`: this
    process's only). `extra(tmp_dir)` may write more files (tokenizer, base LM, plots) into the
    folder first. Temporary folders left by an earlier save of a dead process are removed (a live
    process's save in progress is left alone). Raises `WriteError` (path and OS error) when the disk
    refuses or `directory` is a file (ENOTDIR); the previous checkpoint is then kept and the temporary
    folder removed.
    """
    directory = Path(directory)

    def fill(tmp: Path) -> None:
        _write_checkpoint(tmp, model_state=model_state, trainer_state=trainer_state, config_yaml=config_yaml,
                          optimizer_state=optimizer_state, with_rng=with_rng, rng_states=rng_states, extra=extra)

    return atomic.write_dir(directory, fill, "the checkpoint", "the previous checkpoint there, if any, is kept",
                            old=parked(directory))


def _write_checkpoint(tmp: Path, *, model_state, trainer_state, config_yaml, optimizer_state, with_rng, rng_states,
                      extra) -> None:
    save_weights(tmp / MODEL_FILE, model_state)
    state = dict(trainer_state)
    if optimizer_state is not None:
        tensors, meta = optimizer_to_safetensors(optimizer_state)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(meta))
    if with_rng and rng_states is None:
        rng_states = [rng_state()]
    if rng_states:
        flat = {f"{rank}.{k}": v for rank, (t, _) in enumerate(rng_states) for k, v in t.items()}
        save_file(_contiguous(flat), str(tmp / "rng.safetensors"))
        state["rng"] = [meta for _, meta in rng_states]
    if config_yaml is not None:
        (tmp / "config.yaml").write_text(config_yaml)
    if extra is not None:
        extra(tmp)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))


def parked(directory: Path) -> Path:
    """`<dir>.old`: where a save parks the previous checkpoint between its two renames (where the OS has
    no atomic exchange); `resolve_checkpoint` puts it back after a kill there."""
    return directory.with_name(directory.name + ".old")


def resolve_checkpoint(directory: str | Path) -> Path:
    """The checkpoint folder to read, recovering from a crash mid-swap; clear error if none.
    An exported model folder (`rvlf export`, `rvlf.inference.model_folder`) is read as it is."""
    directory = Path(directory)
    if (directory / "rvlf_model.json").is_file():
        return directory
    if not (directory / STATE_FILE).is_file():
        if (parked(directory) / STATE_FILE).is_file() and not directory.exists():
            atomic.restore_parked(parked(directory), directory)  # a save killed between its two renames
            if not (directory / STATE_FILE).is_file():
                raise InputFileError(directory, "not a checkpoint folder (no trainer_state.json)")
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
