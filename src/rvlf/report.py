"""`rvlf report`: the paper's tables from finished runs.

Each run folder (the `--out` of a training command) holds `results.json` and `last/config.yaml`
(or `best/config.yaml`). Rows are the runs' test scores, each linked to its folder and config:
main results (Tables 1-4 layout), the framework ablation (Table 5), the DINOv2 parts (Table 6)
and the reward choices (Table 7).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rvlf.config import read_yaml
from rvlf.errors import InputFileError

COLUMNS = ("rouge_l", "bleu1", "bleu2", "bleu3", "bleu4")
HEADER = ("ROUGE", "B@1", "B@2", "B@3", "B@4")


@dataclass
class Run:
    path: Path
    stage: str
    config: dict
    config_path: Path
    test: dict

    @property
    def dataset(self) -> str:
        data = self.config.get("data", {})
        return data.get("dataset", "?") + (f" ({Path(data['root']).name})" if data.get("dataset") == "manifest" else "")

    @property
    def pretrained(self) -> bool:
        return self.config.get("pretrained_encoder", True)

    @property
    def face(self) -> bool:
        return self.config.get("fusion", {}).get("use_face", True)

    @property
    def hand(self) -> bool:
        return self.config.get("fusion", {}).get("use_hand", True)

    @property
    def reward(self) -> str:
        return self.config.get("grpo", {}).get("reward", "both")

    def name(self) -> str:
        if self.stage == "pretrain":
            return "Stage 1 (VLP decoder)"
        base = "SLT-SFT" if self.stage == "sft" else "SLT-GRPO"
        notes = []
        if not self.pretrained:
            notes.append("w/o pre-training")
        if not self.face and not self.hand:
            notes.append("w/o DINOv2")
        elif not self.face or not self.hand:
            notes.append("face only" if self.face else "hand only")
        if self.stage == "grpo" and self.reward != "both":
            notes.append(f"reward {self.reward}")
        return base + (f" ({', '.join(notes)})" if notes else "")


def load_run(path: str | Path) -> Run:
    path = Path(path)
    results = path / "results.json"
    if not results.is_file():
        raise InputFileError(path, "not a finished run (no results.json)")
    try:
        summary = json.loads(results.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFileError(results, f"not valid JSON ({err})") from None
    if not summary.get("test"):
        raise InputFileError(results, "has no test scores (the run was not evaluated on test)")
    for sub in ("best", "last"):
        cfg_path = path / sub / "config.yaml"
        if cfg_path.is_file():
            break
    else:
        raise InputFileError(path, "no best/config.yaml or last/config.yaml")
    config = read_yaml(cfg_path)
    return Run(path, config.get("stage", "?"), config, cfg_path, summary["test"])


def _row(name: str, run: Run, out_dir: Path, extra: tuple[str, ...] = ()) -> str:
    link = os.path.relpath(run.path, out_dir)
    cfg = os.path.relpath(run.config_path, out_dir)
    cells = [*extra, *(f"{run.test[c]:.2f}" for c in COLUMNS)]
    return f"| {name} | " + " | ".join(cells) + f" | [{link}]({link}) ([config]({cfg})) |"


def _table(title: str, head: tuple[str, ...], rows: list[str]) -> str:
    if not rows:
        return ""
    cols = ("Method", *head, *HEADER, "run")
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols), *rows, ""]
    return "\n".join(lines)


def build_report(run_dirs: list[str | Path], out: str | Path) -> str:
    """Markdown with every table the given runs can fill."""
    out_dir = Path(out).resolve().parent
    runs = [load_run(p) for p in run_dirs]
    order = {"pretrain": 0, "sft": 1, "grpo": 2}
    parts = ["# RVLF results", "", "Test split, beam search 5, the protocol of docs/evaluation.md.", ""]
    for dataset in sorted({r.dataset for r in runs}):
        rs = sorted((r for r in runs if r.dataset == dataset), key=lambda r: (order.get(r.stage, 9), r.name()))
        parts.append(f"## {dataset}\n")
        parts.append(_table("Main results (Tables 1-4 layout)", (), [_row(r.name(), r, out_dir) for r in rs]))
        full_grpo = [r for r in rs if r.stage == "grpo" and r.pretrained and r.face and r.hand and r.reward == "both"]
        full_sft = [r for r in rs if r.stage == "sft" and r.pretrained and r.face and r.hand]
        ablation = [_row("SLT-GRPO", r, out_dir) for r in full_grpo[:1]]
        ablation += [_row("w/o Pre-training", r, out_dir) for r in rs if r.stage == "sft" and not r.pretrained][:1]
        ablation += [_row("w/o DINOv2", r, out_dir) for r in rs
                     if r.stage == "sft" and r.pretrained and not r.face and not r.hand][:1]
        ablation += [_row("w/o RFT", r, out_dir) for r in full_sft[:1]]
        parts.append(_table("Framework ablation (Table 5)", (), ablation))
        dino = [_row("SLT-SFT", r, out_dir, ("✓" if r.face else "×", "✓" if r.hand else "×"))
                for r in rs if r.stage == "sft" and r.pretrained]
        parts.append(_table("DINOv2 features (Table 6)", ("Face", "Hand"), dino))
        reward = [_row("SLT-GRPO", r, out_dir, ("✓" if r.reward in ("bleu", "both") else "×",
                                                 "✓" if r.reward in ("rouge", "both") else "×"))
                  for r in rs if r.stage == "grpo"]
        parts.append(_table("Reward functions (Table 7)", ("BLEU-4", "ROUGE"), reward))
    return "\n".join(p for p in parts if p is not None)
