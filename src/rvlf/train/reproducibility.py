"""Reproducibility: seeding every process alike, files made once, RNG streams kept apart.

The RNG state itself is captured into and restored from checkpoints by `rvlf.train.checkpoint`
(`rng_state`, `set_rng_state`, `load_rng`); the trainer restores it once the resumed epoch's data
iterator exists (see `rvlf.train.loop`).
"""

from __future__ import annotations

import platform
from contextlib import contextmanager
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env, set_seed


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch alike on every process: call it before building the model,
    so that `train.seed` fixes the initialisation and every process builds the same weights."""
    set_seed(seed)


@contextmanager
def main_process_first():
    """The main process runs the block first, then the others (files every process needs)."""
    # as `Accelerator` would: `accelerate launch --cpu` / ACCELERATE_USE_CPU selects gloo on CPU
    with PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")).main_process_first():
        yield


def rng_devices() -> list[int]:
    """The CUDA devices whose RNG `torch.random.fork_rng` must save and restore (none on CPU)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def cpu_model() -> str:
    """The CPU's model name (Linux `/proc/cpuinfo`, else `platform`): results and timings depend on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
