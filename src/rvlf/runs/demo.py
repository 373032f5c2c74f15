"""The main job: all three stages on the embedded demo corpus, on CPU, with a results table.

`run_demo(out)` generates the corpus (`rvlf.synth`, tiny random DINOv2 features), runs
stage 1, pretrains the tiny Qwen3 on text of the demo language (`rvlf.synth.lm`: the demo's
stand-in for Qwen3's pretraining), runs SLT-SFT on that LM and SLT-GRPO with the small configs of
`rvlf/runs/demo_configs/`, evaluates each stage on the test split with beam search 5 and writes
`results.json`, `results.md` (the paper-style table and example translations, like Table 8) and
the learning-curve PNGs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from rvlf import atomic
from rvlf.config import load_config
from rvlf.errors import RvlfError
from rvlf.progress import command_line
from rvlf.synth.corpus import generate_corpus
from rvlf.synth.lm import LMPretrainConfig, is_finished, lm_stamp, pretrain_demo_lm
from rvlf.text.files import read_translations
from rvlf.text.metrics import protocol, sentence_scores
from rvlf.text.significance import format_diff, paired_test
from rvlf.train import grpo, pretrain, sft
from rvlf.train.common import write_json
from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig
from rvlf.train.plots import plot_learning_curve
from rvlf.train.reproducibility import cpu_model

log = logging.getLogger("rvlf.runs.demo")

ROWS = (("vlp", "Stage 1 (VLP decoder)"), ("slt_sft", "SLT-SFT"), ("slt_grpo", "SLT-GRPO"))
METRICS = ("rouge_l", "bleu1", "bleu2", "bleu3", "bleu4", "reward")
HEADER = ("ROUGE", "B@1", "B@2", "B@3", "B@4", "reward")
# each stage against the one before it: (results key, baseline key, run folder, baseline run folder)
COMPARISONS = (("slt_sft", "vlp", "sft", "pretrain"), ("slt_grpo", "slt_sft", "grpo", "sft"))
DIFF_METRICS = (("bleu4", "ΔB@4 [95% CI]"), ("reward", "Δreward [95% CI]"))


def demo_config(stage: str) -> Path:
    """Path of the packaged demo config `stage` (pretrain, sft, grpo and their `_long` versions)."""
    return Path(str(resources.files("rvlf.runs") / "demo_configs" / f"{stage}.yaml"))


@dataclass
class DemoSize:
    """How big the demo is; `quick` is for tests and smoke runs. `long` (`rvlf demo --long`) gives
    SLT-GRPO the paper's 2 epochs with two policy updates per sampled batch
    (`demo_configs/grpo_long.yaml`) on the same corpus, stage 1 a
    longer schedule (`pretrain_long.yaml`: more epochs, nothing else) and SFT 12 epochs without its
    final lr decay (`sft_long.yaml`: GRPO's decaying 2 epochs take its place)."""

    n_train: int = 2000
    n_dev: int = 200
    n_test: int = 200
    overrides: tuple[str, ...] = ()
    pretrain_config: str = "pretrain"  # the packaged config of each stage (`*_long` for --long)
    sft_config: str = "sft"
    grpo_config: str = "grpo"
    # `rvlf.synth.lm.LMPretrainConfig` fields for the base LM: `make demo` reads 10,000 sentences
    # twice (312 steps, to stay within 10 minutes), `--long` the defaults (20,000 three times)
    lm: dict = field(default_factory=lambda: {"n_sentences": 10_000, "epochs": 2})
    lm_long: dict = field(default_factory=dict)

    @property
    def long(self) -> bool:
        return self.grpo_config == "grpo_long"

    def with_long(self) -> "DemoSize":
        """The same size with the long schedules."""
        return dataclasses.replace(self, pretrain_config="pretrain_long", sft_config="sft_long",
                                   grpo_config="grpo_long", lm=self.lm_long)

    @classmethod
    def quick(cls) -> "DemoSize":
        return cls(n_train=64, n_dev=16, n_test=16, overrides=(
            "train.epochs=1", "data.dev_max_samples=8", "train.num_beams=2", "train.max_new_tokens=16",
        ), lm={"n_sentences": 256, "epochs": 1}, lm_long={"n_sentences": 256, "epochs": 1})


def format_table(results: dict) -> str:
    """The paper-style results table (Tables 1-4 layout) as Markdown; with `results["significance"]`
    also each stage's BLEU-4 and reward difference to the row above, with its 95% interval; with
    `results["protocol"]` a last line naming the protocol's signature (`rvlf.text.metrics.signature`)."""
    sig = results.get("significance") or {}
    diff_head = tuple(h for _, h in DIFF_METRICS) if sig else ()
    lines = ["| Method | " + " | ".join(HEADER + diff_head) + " |", "| --- |" + " ---: |" * len(HEADER + diff_head)]
    for key, name in ROWS:
        if key in results:
            r = results[key]
            cells = [f"{r[m]:.2f}" for m in METRICS]
            if sig:
                test = next((sig.get(f"{k}_vs_{b}") for k, b, _, _ in COMPARISONS if k == key), None)
                cells += [format_diff(test[m]) if test else "–" for m, _ in DIFF_METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if (results.get("protocol") or {}).get("signature"):
        lines += ["", f"Scores: `{results['protocol']['signature']}` (docs/evaluation.md)."]
    return "\n".join(lines)


def significance(out: Path, *, lang: str = "en", resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap tests of SLT-SFT vs stage 1 and SLT-GRPO vs SLT-SFT on the test translations
    (`rvlf.text.significance.paired_test`): `{"slt_sft_vs_vlp": {metric: {baseline, system, diff,
    ci95, p_value}}, "slt_grpo_vs_slt_sft": {...}}`; a pair without translations is left out."""
    tests = {}
    for key, base_key, run, base_run in COMPARISONS:
        a, b = run_translations(out, base_run), run_translations(out, run)
        if not a or set(a) != set(b):
            continue
        ids = sorted(a)
        tests[f"{key}_vs_{base_key}"] = paired_test([a[i][0] for i in ids], [b[i][0] for i in ids],
                                                    [a[i][1] for i in ids], lang, resamples=resamples, seed=seed)
    return tests


def significance_line(results: dict, seed: int = 0) -> str:
    """What the Δ columns of `format_table` mean (empty without `results["significance"]`)."""
    if not results.get("significance"):
        return ""
    return ("Δ: difference to the row above on the same test sentences, with its 95% interval from paired "
            f"bootstrap resampling (1000 resamples, seed {seed}; `significance` in results.json also has ROUGE-L, "
            "chrF and p-values); (n.s.): not significant, p >= 0.05: the test set cannot tell the two apart.")


def grpo_dev_line(dev: dict) -> str:
    """What SLT-GRPO did to the SLT-SFT model's mean dev reward, on the dev subset it evaluates on
    (`dev["samples"]["grpo"]` of the `dev["of"]` dev sentences, when `results.json` records them)."""
    before, after = dev.get("slt_grpo_baseline"), dev.get("slt_grpo")
    if not before or not after:
        return ""
    n, of = (dev.get("samples") or {}).get("grpo"), dev.get("of")
    subset = f" (on the first {n} of the {of} dev sentences, data.dev_max_samples)" if n and of and n < of else ""
    return (f"SLT-GRPO on dev: mean reward {before['reward']:.2f} (SLT-SFT, before) -> {after['reward']:.2f} "
            f"(best GRPO checkpoint); BLEU-4 {before['bleu4']:.2f} -> {after['bleu4']:.2f}{subset}.")


def run_translations(out: Path, run: str) -> dict[str, tuple[str, str]]:
    """A stage run's `test_translations.tsv` (`rvlf.text.files.read_translations`: a malformed line is an
    `InputFileError` naming the file and line, never dropped); {} when the run wrote none."""
    path = out / run / "test_translations.tsv"
    return read_translations(path) if path.is_file() else {}


def examples(out: Path, n: int = 5) -> str:
    """A few test sentences with each stage's translation and its scores (like Table 8)."""
    runs = {key: run_translations(out, run)
            for key, run in (("vlp", "pretrain"), ("slt_sft", "sft"), ("slt_grpo", "grpo"))}
    ids = sorted(runs["slt_grpo"] or runs["slt_sft"] or runs["vlp"])[:n]
    blocks = []
    for i in ids:
        ref = next(r[i][1] for r in runs.values() if i in r)
        rows = [f"| Reference | {ref} | |"]
        for key, name in ROWS:
            if i in runs[key]:
                hyp = runs[key][i][0]
                s = sentence_scores(hyp, ref, "en")
                rows.append(f"| {name} | {hyp} | B-4 {s['bleu4']:.2f}, R-L {s['rouge_l']:.2f} |")
        blocks.append(f"**{i}**\n\n| Source | Sentence | Metrics |\n| --- | --- | --- |\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def run_demo(out: str | Path = "runs/demo", *, size: DemoSize | None = None, seed: int = 0,
             workers: int = 2, progress: bool = True) -> dict:
    """Corpus -> stage 1 -> base LM (`rvlf.synth.lm`) -> SLT-SFT -> SLT-GRPO; returns `results.json`'s content."""
    size = size or DemoSize()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    timings: dict[str, float] = {}
    dev_subset: dict[str, int] = {}  # data.dev_max_samples of each stage (0: the whole dev split)
    say(f"1/5 corpus: {size.n_train}/{size.n_dev}/{size.n_test} sentences -> {out / 'corpus'}")
    corpus = Path(generate_corpus(out / "corpus", seed=seed, n_train=size.n_train, n_dev=size.n_dev,
                                  n_test=size.n_test, dino="tiny", workers=workers, progress=progress))
    timings["corpus"] = time.time() - t0
    done_line("1/5", "corpus", timings["corpus"])
    common = [f"data.root={corpus / 'manifest.jsonl'}", f"data.dino_model={corpus / 'dinov2-tiny'}",
              f"train.seed={seed}", f"train.progress={str(progress).lower()}", *size.overrides]

    upstream = {"corpus": json.loads((corpus / "corpus.json").read_text(encoding="utf-8"))}

    def stage(name: str, module, config_class, init: Path | None, label: str, step: str, config: str = "",
              extra: tuple[str, ...] = ()) -> dict:
        t = time.time()
        cfg = load_config(config_class, demo_config(config or name), [*common, *extra])
        stamp = stage_stamp(cfg, upstream)
        kept = finished_stage(out / name, stamp)
        if kept is not None:
            say(f"{step} {label}: kept from an earlier run with the same config, code and torch threads "
                f"({out / name}; delete it to run the stage again)")
            summary = kept
        else:
            say(f"{step} {label}")
            (out / name / STAMP_FILE).unlink(missing_ok=True)
            summary = module.run(cfg, out / name, init=str(init) if init else None, overwrite=True)  # not kept: redone
            write_json(out / name / STAMP_FILE, stamp)  # last: a stage cut short is never kept
        upstream[name] = stamp
        timings[name] = time.time() - t
        done_line(step, STEP_NAMES[name], timings[name], kept=kept is not None)
        dev_subset[name] = cfg.data.dev_max_samples
        png = out / name / "learning_curve.png"
        if not png.exists():
            plot_learning_curve(out / name / "metrics.jsonl", png, title=f"{label} on dev")
        return summary

    long = " (long)" if size.long else ""
    s1 = stage("pretrain", pretrain, PretrainConfig, None, "stage 1: visual-language pre-training" + long, "2/5",
               config=size.pretrain_config)
    # the LM that SFT adapts: the SFT config's tiny Qwen3, pretrained on demo-language text
    t = time.time()
    tiny = load_config(SFTConfig, demo_config(size.sft_config), common).llm.tiny
    lm_cfg = LMPretrainConfig(**{"seed": seed, **size.lm})
    upstream["lm"] = lm_stamp(corpus / "manifest.jsonl", tiny, "en", lm_cfg, runtime_stamp())
    label = (f"base LM: a {tiny.get('num_layers', 2)}-layer, {tiny.get('hidden_size', 64)}-wide Qwen3 reads "
             f"{lm_cfg.n_sentences} demo-language sentences (the stand-in for Qwen3's pretraining)")
    if is_finished(out / "lm", upstream["lm"]):
        say(f"3/5 {label}: kept from an earlier run with the same config, code and torch threads "
            f"({out / 'lm'}; delete it to run the step again)")
    else:
        say(f"3/5 {label}, {lm_cfg.steps} steps -> {out / 'lm'}")
    lm_dir = pretrain_demo_lm(corpus / "manifest.jsonl", out / "lm", shape=tiny, config=lm_cfg,
                              stamp_extra=runtime_stamp(), progress=progress)
    timings["lm"] = time.time() - t
    done_line("3/5", "base LM", timings["lm"])
    s2 = stage("sft", sft, SFTConfig, out / "pretrain" / "best", "stage 2: SLT-SFT" + long, "4/5",
               config=size.sft_config, extra=base_lm_overrides(lm_dir))
    s3 = stage("grpo", grpo, GRPOConfig, out / "sft" / "best", "stage 3: SLT-GRPO" + long, "5/5",
               config=size.grpo_config)
    results = {
        "vlp": s1["test"],
        "slt_sft": s2["test"],
        "slt_grpo": s3["test"],
        "dev": {"vlp": s1.get("best_dev"), "slt_sft": s2.get("best_dev"), "slt_grpo": s3.get("best_dev"),
                "slt_grpo_baseline": s3.get("baseline_dev"),
                # how many dev sentences the dev figures use (data.dev_max_samples), of how many
                "samples": {name: min(n, size.n_dev) if n else size.n_dev for name, n in dev_subset.items()},
                "of": size.n_dev},
        "seconds": {k: round(v, 1) for k, v in timings.items()} | {"total": round(time.time() - t0, 1)},
        "corpus": str(corpus),
        "base_lm": str(lm_dir.resolve()),
        "seed": seed,
        "pretrain_config": size.pretrain_config,
        "sft_config": size.sft_config,
        "grpo_config": size.grpo_config,
        "machine": machine(),
        "significance": significance(out, seed=seed),
        "protocol": protocol("en"),  # how every score above was made (tokens, sacrebleu signatures)
    }
    write_json(out / "results.json", results)
    table = format_table(results)
    dev_line = grpo_dev_line(results["dev"])
    sig_line = significance_line(results, seed)
    title = "rvlf demo --long" if size.long else "rvlf demo"
    beams = next((o.split("=", 1)[1] for o in size.overrides if o.startswith("train.num_beams=")), "5")
    text = (f"# {title} results (seed {seed}; test split, beam search {beams})\n\n{table}\n\n"
            f"reward = mean Eq. 15 reward (0.5 BLEU-4 + 0.5 ROUGE-L) x 100. {sig_line}\n\n{dev_line}\n\n"
            f"## Example translations\n\n{examples(out)}\n")
    atomic.write_text(out / "results.md", text, what="the demo results")
    print("\n" + table + "\n\n" + sig_line + "\n\n" + dev_line)
    print("\n" + command_line(f"done in {results['seconds']['total']:.0f} s; results in {out / 'results.json'}, "
                              f"{out / 'results.md'}; learning curves in {out}/*/learning_curve.png", default="demo"))
    return results


def base_lm_overrides(lm_dir: Path) -> tuple[str, ...]:
    """SFT config overrides that load the demo's pretrained base LM from `lm_dir` (not a random tiny
    one) and copy it into every checkpoint (`llm.keep_base`)."""
    return (f"llm.name_or_path={Path(lm_dir).resolve()}", "llm.tiny={}", "llm.keep_base=true")


STAMP_FILE = "demo_stage.json"
STEP_NAMES = {"pretrain": "stage 1 (pretrain)", "sft": "stage 2 (SLT-SFT)", "grpo": "stage 3 (SLT-GRPO)"}


def done_line(step: str, what: str, seconds: float, *, kept: bool = False) -> None:
    """`rvlf demo: 2/5 stage 1 (pretrain) done in 123 s`: where the demo's time goes, one line a step."""
    say(f"{step} {what} {'kept' if kept else 'done'} in {seconds:.0f} s")


def say(text: str) -> None:
    """One step line on stdout, `rvlf demo: TEXT` (`rvlf.progress.command_line`: the running command's
    name, `demo` from the Python API), flushed so that it shows before the step's progress lines."""
    print(command_line(text, default="demo"), flush=True)


def stage_stamp(cfg, upstream: dict) -> dict:
    """What a demo stage's result depends on: its resolved config, the stamps of the corpus and of
    the stages before it, rvlf's source code (a digest of its .py files), torch and its thread
    count (a different count sums in another order: other last digits)."""
    config = dataclasses.asdict(cfg)
    config["train"].pop("progress", None)  # a progress bar changes no number
    return json.loads(json.dumps({"config": config, "upstream": upstream, **runtime_stamp()}, default=str))


def runtime_stamp() -> dict:
    """rvlf's code digest, torch's version and thread count: what a demo step's numbers depend on
    besides its config and inputs."""
    return {"code": code_digest(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of rvlf's .py files (names and contents), read once per process."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # src/rvlf (this module is in rvlf/runs/)
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def finished_stage(run_dir: Path, stamp: dict) -> dict | None:
    """The summary (`results.json`) of a stage finished earlier in `run_dir` with exactly `stamp`,
    else None: `rvlf demo` run again (after an interruption, or with `--long` on a finished demo)
    keeps those stages and runs the rest."""
    try:
        if json.loads((run_dir / STAMP_FILE).read_text(encoding="utf-8")) != stamp:
            return None
        summary = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if (run_dir / "best").is_dir() and "test" in summary else None


def machine() -> dict:
    """Where the demo ran: CPU model, cores, torch's threads and version (timings depend on them, and so do
    the last digits of the scores: a different thread count sums in a different order)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


ABLATIONS = (
    ("no_pretrain", "w/o pre-training", ["pretrained_encoder=false"]),
    ("no_dino", "w/o DINOv2", ["fusion.use_face=false", "fusion.use_hand=false"]),
    ("face_only", "face only", ["fusion.use_hand=false"]),
    ("hand_only", "hand only", ["fusion.use_face=false"]),
)


def run_ablations(out: str | Path = "runs/demo", *, which: tuple[str, ...] = ("no_pretrain", "no_dino"),
                  size: DemoSize | None = None, seed: int = 0, progress: bool = True) -> dict:
    """SLT-SFT ablations (Tables 5 and 6) on the demo corpus, from the demo's stage-1 checkpoint, with
    the SFT config of the demo in `out` (`sft`, or `sft_long` for a `--long` run).

    Needs a finished `run_demo(out)`; writes `out/ablations/<name>/` and `out/ablation.md`."""
    size = size or DemoSize()
    out = Path(out)
    if not (out / "results.json").is_file():
        raise RvlfError(f"{out}: no finished demo here (run `rvlf demo --out {out}` first)")
    results = load_results(out / "results.json")
    corpus = Path(results["corpus"])
    common = [f"data.root={corpus / 'manifest.jsonl'}", f"data.dino_model={corpus / 'dinov2-tiny'}",
              f"train.seed={seed}", f"train.progress={str(progress).lower()}", *size.overrides]
    if results.get("base_lm"):  # the demo's pretrained base LM, as its SFT stage used it (in `out`: it moves with it)
        common += base_lm_overrides(out / "lm")
    rows = {"full": ("SLT-SFT (full)", results["slt_sft"])}
    for key, label, extra in ABLATIONS:
        if key not in which:
            continue
        say(f"ablation: SLT-SFT {label}")
        cfg = load_config(SFTConfig, demo_config(results.get("sft_config", size.sft_config)), common + extra)
        summary = sft.run(cfg, out / "ablations" / key, init=str(out / "pretrain" / "best"), overwrite=True)
        rows[key] = (f"SLT-SFT {label}", summary["test"])
    lines = ["| Setting | " + " | ".join(HEADER) + " |", "| --- |" + " ---: |" * len(HEADER)]
    for label, r in rows.values():
        lines.append(f"| {label} | " + " | ".join(f"{r[m]:.2f}" for m in METRICS) + " |")
    table = "\n".join(lines)
    atomic.write_text(out / "ablation.md", f"# SLT-SFT ablations on the demo corpus (test split)\n\n{table}\n",
                      what="the ablation table")
    print("\n" + table)
    write_json(out / "ablations" / "results.json", {k: v[1] for k, v in rows.items()})
    return {k: v[1] for k, v in rows.items()}
