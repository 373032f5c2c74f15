"""The registry of benchmark items: one module each in this folder, one line each below.

An item module defines `run(sizes: Sizes, ctx: dict, **kwargs) -> Section` (`benchmarks.harness`): it
builds its inputs, times its work with `timed` and returns a numbered section of `Row`s and notes. `ctx`
holds what the harness measured first (`ctx["peak"]`: the float32 matmul GFLOP/s). Imports of rvlf, torch
and the like go inside `run`, so `--only` pays only for what it runs and a broken item fails alone.

To add an item: write `items/<name>.py` and add one line to `BENCHES` (or `OPTIONAL` for a variant that
runs only when named in `--only`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from benchmarks.harness import Section, Sizes

# name (for --only) -> (module in this folder, keyword arguments of its run()), in the order of a full run
BENCHES: dict[str, tuple[str, dict]] = {
    "config": ("config", {}),  # seconds: a fresh process loading a paper config
    "keypoints": ("keypoints", {}),
    "dino": ("dino", {}),
    "stage1": ("stage1", {}),
    "generation": ("generation", {}),
    "scoring": ("scoring", {}),
    "translate": ("translate", {}),
    "significance": ("significance", {}),
    "features": ("features", {}),
    "bf16": ("bf16", {}),  # DINOv2-base in float32 and bfloat16
    "startup": ("startup", {}),  # fresh interpreters without bytecode, this checkout and a baseline commit
    "grpo_group": ("grpo_group", {}),  # minutes: GRPO steps at the paper's group shape
    "extract_engines": ("extract_engines", {}),  # rvlf extract: local process pool against Ray, frames/s
    "planner": ("planner", {}),  # minutes: rvlf plan-memory against measurement, Qwen3-0.6B at full depth
    "llm": ("llm", {}),  # the longest: last, so the report holds everything else if it is stopped
}
OPTIONAL: dict[str, tuple[str, dict]] = {  # not in the default list: one half of `llm` each
    "sft": ("llm", {"parts": ("sft",)}),
    "grpo": ("llm", {"parts": ("grpo",)}),
}


def load(name: str) -> Callable[[Sizes, dict], Section]:
    """`run(sizes, ctx)` of item `name` (from BENCHES or OPTIONAL) with its keyword arguments. Its module is
    imported when it is called, so an import error is that item's failure (and its time)."""
    module, kwargs = BENCHES[name] if name in BENCHES else OPTIONAL[name]

    def run(sizes: Sizes, ctx: dict) -> Section:
        return importlib.import_module(f"{__name__}.{module}").run(sizes, ctx, **kwargs)

    return run
