"""Arguments shared by the training commands (the CLI contract of every stage)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rvlf.atomic import file_in_the_way
from rvlf.errors import RvlfError


def add_training_args(p: argparse.ArgumentParser, default_config: str | None = None) -> None:
    """`--config FILE --out DIR --max-steps N --resume [--allow-config-change] --overwrite --init DIR` and
    `key=value` overrides."""
    p.add_argument("--config", default=default_config, required=default_config is None,
                   help="YAML config (see configs/paper/<dataset>/ and configs/demo/)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, plots)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimiser steps (for smoke runs)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/last; refused when the settings differ from the run's own "
                        "(OUT/last/config.yaml) in what they compute (docs/runs.md)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue with the new settings (new lr, schedule, batch size, data, ...); "
                        "the change is logged in OUT/metrics.jsonl")
    p.add_argument("--overwrite", action="store_true",
                   help="OUT holds an earlier run: remove its checkpoints, logs and results and start a new one")
    p.add_argument("--init", default=None, help="checkpoint directory of the previous stage")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                   help="autocast precision (default: the config's train.mixed_precision)")
    p.add_argument("--grad-accum", type=int, default=None, help="gradient accumulation steps")
    p.add_argument("--grad-checkpointing", action="store_true", help="trade compute for activation memory")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.lr=0.005 data.root=/data/csl")


def training_overrides(args: argparse.Namespace) -> list[str]:
    """The `key=value` overrides plus the flags that are config keys in disguise."""
    out = list(args.overrides)
    if args.mixed_precision:
        out.append(f"train.mixed_precision={args.mixed_precision}")
    if args.grad_accum:
        out.append(f"train.grad_accum={args.grad_accum}")
    if args.grad_checkpointing:
        out.append("train.grad_checkpointing=true")
    return out


def run_folder_args(args: argparse.Namespace) -> dict:
    """The recipes' `run(...)` keywords for what may happen to the run folder (`rvlf.train.run_folder`)."""
    return {"resume": args.resume, "overwrite": args.overwrite, "allow_config_change": args.allow_config_change}


def check_output_file(path: str | Path, option: str, example: str = "out") -> None:
    """Refuse an output file option (`--show`, `--translations`, `--out`) that cannot be written, before
    any work: an existing folder, or a path under a file (`RvlfError`, exit 2; the OS would say "File
    exists (EEXIST)" or "Is a directory" only when the result is written). `example`: the file name the
    message suggests inside a folder."""
    path = Path(path)
    if path.is_dir():
        raise RvlfError(f"{option} {path}: is a folder; give the file to write, e.g. {option} {path / example}")
    blocker = file_in_the_way(path)
    if blocker:
        raise RvlfError(f"{option} {path}: {blocker} is a file, not a folder")


def check_output_dir(path: str | Path, option: str) -> None:
    """Refuse an output folder option (`extract --out`) that is a file or lies under a file, before any
    work (`RvlfError`, exit 2; the OS says only "File exists (EEXIST)" or "Not a directory")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RvlfError(f"{option} {path}: is a file, not a folder")
    blocker = file_in_the_way(path)
    if blocker:
        raise RvlfError(f"{option} {path}: {blocker} is a file, not a folder")


def not_ready(name: str, issue: str):
    """Handler for a command whose implementation has not landed yet."""

    def run(args):
        err = RvlfError(f"`rvlf {name}` is not implemented yet (tracked in {issue})")
        err.exit_code = 3
        raise err

    return run


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a multi-process launch (so results print once)."""
    return os.environ.get("RANK", "0") == "0"


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (beam widths, batch sizes), refused in one usage line otherwise."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (0 meaning "no limit" where the option says so)."""
    return _whole_number(text, 0)
