"""Splitting `rvlf extract`'s inputs over machines: `--shard K/N` and Slurm job arrays.

A job belongs to shard `sha1(name) mod N`, where `name` is its output path relative to `--out`
(`<rel>.npz`: the video's path relative to its input folder, or a manifest's `id`). The split is
therefore the same on every machine and in every run whatever the order in which folders are
listed, the N shards are disjoint and together hold every job, and adding a video moves no other
video to another shard. Shards are numbered 0..N-1.

Under a Slurm job array (`sbatch --array=0-7`), `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`,
`SLURM_ARRAY_TASK_MIN` (and `SLURM_ARRAY_TASK_STEP`) give the shard when `--shard` is not given:
K = (ID - MIN) / STEP, N = COUNT (https://slurm.schedmd.com/job_array.html).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from rvlf.errors import RvlfError

SLURM_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")


def parse_shard(spec: str) -> tuple[int, int]:
    """`"K/N"` -> (K, N) with 0 <= K < N; `RvlfError` naming the flag otherwise."""
    k, sep, n = str(spec).partition("/")
    try:
        if not sep:
            raise ValueError
        k_i, n_i = int(k), int(n)
    except ValueError:
        raise RvlfError(f"--shard {spec}: expected K/N with whole numbers, e.g. --shard 0/8") from None
    if n_i < 1 or not 0 <= k_i < n_i:
        raise RvlfError(f"--shard {spec}: K must be in 0..N-1 and N >= 1 (shards are numbered from 0)")
    return k_i, n_i


def slurm_shard(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(K, N) of this Slurm array task, or None outside a job array."""
    env = os.environ if env is None else env
    if not all(env.get(v) for v in SLURM_VARS):
        return None
    try:
        task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
        low = int(env.get("SLURM_ARRAY_TASK_MIN") or 0)
        step = int(env.get("SLURM_ARRAY_TASK_STEP") or 1)
    except ValueError:
        raise RvlfError("SLURM_ARRAY_TASK_ID / _COUNT / _MIN / _STEP are not whole numbers: "
                        f"{ {v: env.get(v) for v in (*SLURM_VARS, 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_STEP')} }"
                        ) from None
    k = (task - low) // max(1, step)
    if count < 1 or not 0 <= k < count:
        raise RvlfError(f"Slurm array task {task} (min {low}, step {step}) is not one of "
                        f"{count} tasks; pass --shard K/N explicitly")
    return k, count


def resolve_shard(spec: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """`--shard` if given, else the Slurm array task's shard, else None (all inputs)."""
    return parse_shard(spec) if spec else slurm_shard(env)


def shard_of(name: str | Path, num_shards: int) -> int:
    """The shard (0..num_shards-1) of a job named `name` (its output path relative to `--out`)."""
    key = PurePosixPath(Path(name).as_posix()).as_posix().encode("utf-8")
    return int.from_bytes(hashlib.sha1(key).digest()[:8], "big") % num_shards


def select_shard(jobs: list, out_dir: str | Path, shard: int, num_shards: int) -> list:
    """The jobs (`rvlf.data.extract.Job`) of shard `shard` of `num_shards`, in their given order."""
    out_dir = Path(out_dir)
    return [j for j in jobs if shard_of(j.out.relative_to(out_dir), num_shards) == shard]
