"""0b. Loading and validating a run config: a fresh process, no bytecode cache, against importing torch.

What runs: `python -c` in a fresh interpreter with `PYTHONDONTWRITEBYTECODE=1` (rvlf's modules are
compiled from source, as on a first run) that imports `rvlf.config` and `rvlf.train.recipe_configs` and calls
`load_config(SFTConfig, configs/paper/phoenix/sft.yaml, [override])`: what every training command, `rvlf
plan-memory` and `rvlf evaluate` do before they touch data or a model (YAML with duplicate-key and
`base:` checks, then pydantic's validation of every field). Timed inside the child (import; load and
validate; CPU time of each) and as the whole process. Against it, in the same run and alternating, a
fresh `python -c "import torch"`: what the config check cost when the config classes imported torch.
Then, in this process, `load_config` of each of the 12 paper configs once warm (validators built).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Row, Section, Sizes

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from rvlf.config import load_config
from rvlf.train.recipe_configs import SFTConfig
t1, c1 = time.perf_counter(), time.process_time()
load_config(SFTConfig, sys.argv[1], ["train.lr=1e-4"])
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "import_cpu": c1 - c0, "load": t2 - t1, "load_cpu": c2 - c1,
                  "torch": "torch" in sys.modules}))
"""


def _process(args: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, out.stdout


def run(sizes: Sizes, ctx: dict) -> Section:
    from rvlf.config import load_config, read_yaml
    from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig

    paper = REPO / "configs" / "paper" / "phoenix" / "sft.yaml"
    m: dict[str, list[float]] = {k: [] for k in ("proc", "import", "import_cpu", "load", "load_cpu", "torch", "ratio")}
    for i in range(sizes.warmup + sizes.runs):
        wall, out = _process(["-c", CHILD, str(paper)])
        child = json.loads(out)
        assert not child["torch"], "loading a config imported torch"
        torch_wall, _ = _process(["-c", "import torch"])
        if i < sizes.warmup:
            continue
        for k in ("import", "import_cpu", "load", "load_cpu"):
            m[k].append(child[k])
        m["proc"].append(wall)
        m["torch"].append(torch_wall)
        m["ratio"].append(torch_wall / wall)
    classes = {"pretrain": PretrainConfig, "sft": SFTConfig, "grpo": GRPOConfig}
    files = sorted((REPO / "configs" / "paper").glob("*/*.yaml"))
    for f in files:
        load_config(classes[read_yaml(f)["stage"]], f)  # build each stage's validator once

    def all_files() -> None:
        for f in files:
            load_config(classes[read_yaml(f)["stage"]], f)

    warm = []
    for _ in range(sizes.runs):
        t0 = time.perf_counter()
        all_files()
        warm.append(1e3 * (time.perf_counter() - t0) / len(files))
    sec = Section("0b. Loading and validating a paper config (fresh process, no bytecode cache)")
    sec.rows.append(Row("fresh process: load_config(SFTConfig, paper/phoenix/sft.yaml)", m["proc"], "s", "wall, whole process"))
    sec.rows.append(Row("  in it: import rvlf.config + rvlf.train.recipe_configs", m["import"], "s", "wall"))
    sec.rows.append(Row("  the same, CPU time", m["import_cpu"], "s", "process time"))
    sec.rows.append(Row("  in it: load_config (YAML, checks, first pydantic validation)", m["load"], "s", "wall"))
    sec.rows.append(Row("  the same, CPU time", m["load_cpu"], "s", "process time"))
    sec.rows.append(Row("fresh process: import torch", m["torch"], "s", "wall, whole process"))
    sec.rows.append(Row("import torch / config check", m["ratio"], "x", "wall, per run pair"))
    sec.rows.append(Row(f"load_config warm, each of the {len(files)} paper configs", warm, "ms", "wall, mean a file"))
    sec.notes.append("The config classes (`rvlf.config`, `rvlf.train.recipe_configs`, `rvlf.models.configs`) import "
                     "pyyaml and pydantic, not torch (the child asserts it): checking a config needs neither torch nor "
                     "data nor a model. Wall figures on a loaded machine are inflated; the CPU rows are not.")
    return sec
