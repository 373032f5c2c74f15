"""`rvlf report`: the paper's tables from finished runs.

Each run folder (the `--out` of a training command) holds `results.json` and `last/config.yaml`
(or `best/config.yaml`). Rows are the runs' test scores, each linked to its folder and config:
main results (Tables 1-4 layout), the framework ablation (Table 5), the DINOv2 parts (Table 6)
and the reward choices (Table 7). Beside the paper's columns: chrF and chrF++, and the difference of
ROUGE-L and BLEU-4 to the row's baseline row (SLT-SFT vs stage 1, SLT-GRPO vs SLT-SFT, ablations vs the
full model) with its 95% interval from paired bootstrap resampling of the two runs' test translations
(`test_translations.tsv`, `rvlf.text.significance`); a difference that is not significant
(p >= 0.05) is marked "(n.s.)".

A run that crashed (no or unreadable `results.json`, no test scores, no config) is left out and a run
whose `results.json` lacks a column shows "–" there; both are listed under "Runs left out or
incomplete" (and returned in `problems`), so one broken run never hides the others. `tokenize`: the
paper's protocol (`slrt`, the scores in `results.json`) or a sacrebleu tokenisation, then every row
is rescored from the run's `test_translations.tsv`; each dataset's table names its signature.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rvlf.config import DATASET_LANGS, read_yaml
from rvlf.errors import InputFileError, RvlfError
from rvlf.rl.rewards import translation_reward
from rvlf.text.files import read_translations
from rvlf.text.metrics import (
    SLRT,
    check_scoring,
    check_tokenize,
    corpus_scores,
    signature,
)
from rvlf.text.significance import format_diff, paired_test

COLUMNS = ("rouge_l", "bleu1", "bleu2", "bleu3", "bleu4")  # the paper's
HEADER = ("ROUGE", "B@1", "B@2", "B@3", "B@4")
EXTRA_COLUMNS = ("chrf", "chrf++")  # not in the paper
EXTRA_HEADER = ("chrF", "chrF++")
DIFF_COLUMNS = ("rouge_l", "bleu4")
DIFF_HEADER = ("Δ vs", "ΔROUGE [95% CI]", "ΔB@4 [95% CI]")
TRANSLATIONS = "test_translations.tsv"


@dataclass
class Run:
    path: Path
    stage: str
    config: dict
    config_path: Path
    test: dict
    sacrebleu: dict | None = None  # results.json's `test_sacrebleu` (sacrebleu's standard BLEU), if recorded

    @property
    def lang(self) -> str:
        data = self.config.get("data", {})
        return data.get("lang") or DATASET_LANGS.get(data.get("dataset", ""), "en")

    def translations(self) -> dict[str, tuple[str, str]] | None:
        """`{id: (hypothesis, reference)}` of the test split, or None when the run did not write them."""
        path = self.path / TRANSLATIONS
        return read_translations(path) if path.is_file() else None

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
    if not path.exists():
        raise InputFileError(path, "not found")
    if not results.is_file():
        raise InputFileError(path, "not a finished run (no results.json)")
    try:
        summary = json.loads(results.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise InputFileError(results, f"not valid JSON ({err})") from None
    stages = [s for s in ("pretrain", "sft", "grpo") if (path / s / "results.json").is_file()]
    if not summary.get("test") and stages:  # `rvlf demo`'s folder: its summary, one run a stage below it
        raise InputFileError(path, "an `rvlf demo` folder, not one stage's run: pass its stage runs ("
                             + " ".join(str(path / s) for s in stages) + ")")
    if not summary.get("test"):
        raise InputFileError(results, "has no test scores (the run was not evaluated on test)")
    for sub in ("best", "last"):
        cfg_path = path / sub / "config.yaml"
        if cfg_path.is_file():
            break
    else:
        raise InputFileError(path, "no best/config.yaml or last/config.yaml")
    config = read_yaml(cfg_path)
    if not isinstance(summary["test"], dict):
        raise InputFileError(results, "its `test` entry is not a table of scores")
    return Run(path, config.get("stage", "?"), config, cfg_path, summary["test"], summary.get("test_sacrebleu"))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def missing_columns(run: Run) -> list[str]:
    """The paper's columns that `run.test` lacks or holds no number for."""
    return [c for c in COLUMNS if not _is_number(run.test.get(c))]


def rescore(run: Run, tokenize: str) -> None:
    """Replace `run.test` by the scores of its `test_translations.tsv` on `tokenize`'s tokens (BLEU-1..4,
    ROUGE-L, chrF, chrF++, reward). Raises `InputFileError` when the run has no translations."""
    trans = run.translations()
    if trans is None:
        raise InputFileError(run.path, f"no {TRANSLATIONS} to rescore with --tokenize {tokenize}")
    hyps, refs = [h for h, _ in trans.values()], [r for _, r in trans.values()]
    check_scoring(refs, run.lang, tokenize, str(run.path / TRANSLATIONS))  # e.g. --tokenize zh on English: listed
    scores = corpus_scores(hyps, refs, run.lang, tokenize=tokenize)
    rewards = translation_reward(hyps, refs, run.lang, tokenize=tokenize)
    scores["reward"] = 100.0 * sum(rewards) / len(rewards)
    run.test = scores


class _Tables:
    """Rows and their differences to baseline rows (paired tests cached per pair of runs)."""

    def __init__(self, out_dir: Path, resamples: int, seed: int, alpha: float, tokenize: str = SLRT) -> None:
        self.out_dir, self.resamples, self.seed, self.alpha = out_dir, resamples, seed, alpha
        self.tokenize = tokenize
        self.unreadable: dict[Path, str] = {}  # run -> why its translations could not be read
        self._tests: dict[tuple[Path, Path], dict | None] = {}

    def paired(self, run: Run, base: Run) -> dict | None:
        """`rvlf.text.significance.paired_test(base, run)` on their common test sentences, or None when
        a run has no translations or the two translated different sentences."""
        key = (run.path, base.path)
        if key not in self._tests:
            a, b = self._translations(base), self._translations(run)
            result = None
            if a is not None and b is not None and set(a) == set(b):
                ids = sorted(a)
                result = paired_test([a[i][0] for i in ids], [b[i][0] for i in ids], [a[i][1] for i in ids],
                                     run.lang, resamples=self.resamples, seed=self.seed, metrics=DIFF_COLUMNS,
                                     tokenize=self.tokenize)
            self._tests[key] = result
        return self._tests[key]

    def _translations(self, run: Run) -> dict[str, tuple[str, str]] | None:
        """The run's translations, or None (and noted in `unreadable`) when the file is broken."""
        try:
            return run.translations()
        except RvlfError as err:
            self.unreadable[run.path] = f"{err} (no differences tested for this run)"
            return None

    def diff_cells(self, run: Run, base: Run | None) -> list[str]:
        """[baseline row's name, ΔROUGE, ΔB@4] cells."""
        if base is None:
            return ["–"] * (1 + len(DIFF_COLUMNS))
        if base.path == run.path:
            return ["(baseline)"] + [""] * len(DIFF_COLUMNS)
        result = self.paired(run, base)
        if result is None:
            return [base.name()] + ["–"] * len(DIFF_COLUMNS)
        return [base.name()] + [format_diff(result[m], self.alpha) for m in DIFF_COLUMNS]

    def row(self, name: str, run: Run, base: Run | None, extra: tuple[str, ...] = ()) -> str:
        link = os.path.relpath(run.path, self.out_dir)
        cfg = os.path.relpath(run.config_path, self.out_dir)
        missing = missing_columns(run)
        cells = [*extra, *("–" if c in missing else f"{run.test[c]:.2f}" for c in COLUMNS),
                 *(f"{run.test[c]:.2f}" if _is_number(run.test.get(c)) else "–" for c in EXTRA_COLUMNS),
                 *self.diff_cells(run, base)]
        return f"| {name} | " + " | ".join(cells) + f" | [{link}]({link}) ([config]({cfg})) |"


def _table(title: str, head: tuple[str, ...], rows: list[str]) -> str:
    if not rows:
        return ""
    cols = ("Method", *head, *HEADER, *EXTRA_HEADER, *DIFF_HEADER, "run")
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols), *rows, ""]
    return "\n".join(lines)


def _signature(lang: str, tokenize: str) -> str:
    try:
        return signature(lang, tokenize)
    except RvlfError as err:  # a config with a language code the metrics do not know
        return f"unknown ({err})"


def build_report(run_dirs: list[str | Path], out: str | Path, *, resamples: int = 1000, seed: int = 0,
                 alpha: float = 0.05, tokenize: str = SLRT, problems: list[str] | None = None,
                 counts: dict | None = None) -> str:
    """Markdown with every table the given runs can fill.

    Differences to baseline rows come from `rvlf.text.significance.paired_test` (paired bootstrap,
    `resamples`, `seed`) on the runs' `test_translations.tsv`; p >= `alpha` is marked "(n.s.)".
    `tokenize`: see the module docstring. Runs left out or incomplete are listed in the report and
    appended to `problems` (one line each, naming the run); `counts` (a dict) gets how many runs were
    reported (`runs`), left out (`left_out`) and reported incomplete (`incomplete`), and the
    `datasets`. Raises `RvlfError` when no run can be read."""
    if tokenize != SLRT:
        check_tokenize(tokenize)
    out_dir = Path(out).resolve().parent
    runs, skipped = [], []
    for p in run_dirs:
        try:
            run = load_run(p)
            if tokenize != SLRT:
                rescore(run, tokenize)
        except RvlfError as err:
            skipped.append(str(err))
            continue
        runs.append(run)
    if not runs:
        raise RvlfError(skipped[0] if len(skipped) == 1 else f"no run can be reported: {'; '.join(skipped)}")
    incomplete = [f"{r.path}: results.json lacks {', '.join(missing_columns(r))} (shown as –)"
                  for r in runs if missing_columns(r)]
    t = _Tables(out_dir, resamples, seed, alpha, tokenize)
    order = {"pretrain": 0, "sft": 1, "grpo": 2}
    how = ("the protocol of docs/evaluation.md" if tokenize == SLRT else
           f"sacrebleu's --tokenize {tokenize}, rescored from each run's {TRANSLATIONS}")
    parts = ["# RVLF results", "", f"Test split, beam search 5, {how}.", ""]
    for dataset in sorted({r.dataset for r in runs}):
        rs = sorted((r for r in runs if r.dataset == dataset), key=lambda r: (order.get(r.stage, 9), r.name()))
        parts.append(f"## {dataset}\n")
        sigs = sorted({_signature(r.lang, tokenize) for r in rs})
        parts.append("Signature: " + ", ".join(f"`{sig}`" for sig in sigs) + "\n")
        stage1 = next((r for r in rs if r.stage == "pretrain"), None)
        full_grpo = [r for r in rs if r.stage == "grpo" and r.pretrained and r.face and r.hand and r.reward == "both"]
        full_sft = [r for r in rs if r.stage == "sft" and r.pretrained and r.face and r.hand]
        sft0, grpo0 = (full_sft or [None])[0], (full_grpo or [None])[0]
        main_base = {"pretrain": None, "sft": stage1, "grpo": sft0}
        parts.append(_table("Main results (Tables 1-4 layout)", (),
                            [t.row(r.name(), r, main_base.get(r.stage)) for r in rs]))
        ablation = [t.row("SLT-GRPO", r, grpo0) for r in full_grpo[:1]]
        ablation += [t.row("w/o Pre-training", r, grpo0) for r in rs if r.stage == "sft" and not r.pretrained][:1]
        ablation += [t.row("w/o DINOv2", r, grpo0) for r in rs
                     if r.stage == "sft" and r.pretrained and not r.face and not r.hand][:1]
        ablation += [t.row("w/o RFT", r, grpo0) for r in full_sft[:1]]
        parts.append(_table("Framework ablation (Table 5)", (), ablation))
        dino = [t.row("SLT-SFT", r, sft0, ("✓" if r.face else "×", "✓" if r.hand else "×"))
                for r in rs if r.stage == "sft" and r.pretrained]
        parts.append(_table("DINOv2 features (Table 6)", ("Face", "Hand"), dino))
        reward = [t.row("SLT-GRPO", r, grpo0, ("✓" if r.reward in ("bleu", "both") else "×",
                                                "✓" if r.reward in ("rouge", "both") else "×"))
                  for r in rs if r.stage == "grpo"]
        parts.append(_table("Reward functions (Table 7)", ("BLEU-4 reward", "ROUGE reward"), reward))
    parts.append(
        f"chrF, chrF++: sacrebleu on the protocol's tokens (not in the paper). Δ: the row minus its baseline row "
        f"(main results: SLT-SFT vs stage 1, SLT-GRPO vs SLT-SFT; Table 5 vs SLT-GRPO; Table 6 vs SLT-SFT with face "
        f"and hand; Table 7 vs the BLEU-4 + ROUGE reward) on the same test sentences, with the 95% interval of "
        f"the difference from paired bootstrap resampling ({resamples} resamples, seed {seed}); **(n.s.)**: not "
        f"significant, p >= {alpha:g}, the difference may be noise. –: no baseline row, or a run without "
        f"{TRANSLATIONS}, or runs that translated different sentences. `rvlf compare` gives the full test "
        f"(docs/evaluation.md).\n")
    incomplete += list(t.unreadable.values())
    if counts is not None:
        counts.update(runs=len(runs), left_out=len(skipped), incomplete=len(incomplete),
                      datasets=sorted({r.dataset for r in runs}))
    if problems is not None:
        problems.extend(skipped + incomplete)
    if skipped or incomplete:
        parts.append("## Runs left out or incomplete\n")
        parts += [f"- {line}" for line in skipped + incomplete]
        parts.append("")
    return "\n".join(p for p in parts if p is not None)
