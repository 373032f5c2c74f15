"""What every benchmark item shares: sizes, timing, FLOP and memory counting, machine facts, the report.

An item is a function `run(sizes, ctx) -> Section` (see `items/__init__.py`); it times its work with
`timed`, turns seconds into rates with `rates`, and returns a `Section` of `Row`s (one figure each: the
values of the timed runs) and Markdown notes. `Report` renders the sections and rewrites `--out` after
each one, so a stopped run keeps what it measured.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RVLF_FIXTURES", REPO.parent / "shared" / "fixtures"))
VIDEO = FIXTURES / "signer_58frames.mp4"
GIB = 1024 ** 3

# English words for the random target sentences of the LM items (4. llm, 5. generation)
WORDS = ("the cat dog sat ran on under mat big small red house tree we you they see like go home today rain sun "
         "morning evening weather north south wind cloud snow cold warm").split()


# ---------------------------------------------------------------- measuring


@dataclass
class Sizes:
    warmup: int
    runs: int
    quick: bool
    llm_reduced: bool = False


@dataclass
class Row:
    name: str
    values: list[float]  # one per timed run
    unit: str
    note: str = ""

    def cells(self) -> list[str]:
        v = self.values
        return [self.name, fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)), self.unit, str(len(v)), self.note]


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def fmt(x: float) -> str:
    """A figure with 3 significant digits, or none after the point from 1000 up (thousands separated)."""
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def qwen06b_sign_lm(layers: int, lora: dict, texts: list[str]):
    """A `SignLanguageLM` over a random Qwen3 of Qwen3-0.6B's width and vocabulary (151,936 ids) with
    `layers` layers and the LoRA `lora` (`add_lora` keywords), a small skeleton encoder and the fusion of
    Eq. 12 (DINOv2-base width 768); the chat tokenizer is built from `texts`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rvlf.models.fusion import FusionConfig, SignFusion
    from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
    from rvlf.models.slt_lm import SignLanguageLM, _stop_ids, add_lora, tiny_chat_tokenizer

    tok = tiny_chat_tokenizer(texts, "en")
    config = Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=layers,
                         num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                         rope_theta=1_000_000.0, tie_word_embeddings=True, eos_token_id=_stop_ids(tok)[0],
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    lm = Qwen3ForCausalLM(config)
    # the tokenizer covers ids < len(tok): sampling never leaves them, and never stops early
    lm.generation_config.suppress_tokens = list(range(len(tok), config.vocab_size))
    lm = add_lora(lm, **lora)
    enc = SkeletonEncoder(SkeletonEncoderConfig(gcn_channels=[16, 32], d_model=64, num_layers=1, num_heads=2,
                                                ff_dim=128, dropout=0.0))
    fusion = SignFusion(FusionConfig(dino_dim=768, sign_dim=64), lm.config.hidden_size)
    return SignLanguageLM(enc, fusion, lm, tok)


def timed(fn: Callable[[], object], sizes: Sizes, warmup_fn: Callable[[], object] | None = None) -> list[float]:
    """Wall seconds of `fn()` for each timed run, after the warm-up(s) (`warmup_fn` or `fn`)."""
    for _ in range(sizes.warmup):
        (warmup_fn or fn)()
    out = []
    for _ in range(sizes.runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def rates(work: float, seconds: list[float]) -> list[float]:
    return [work / s for s in seconds]


def training_step(loss_fn: Callable[[], torch.Tensor], opt) -> tuple[Callable[[], None], Callable[[], None]]:
    """(forward + backward, the same followed by the optimiser step) of `loss_fn`: what is counted
    in FLOPs, and what is timed."""

    def fwd_bwd() -> None:
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()

    def step() -> None:
        fwd_bwd()
        opt.step()

    return fwd_bwd, step


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn`, by torch's FlopCounterMode (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


class PeakRSS:
    """Peak resident set size of this process while the block runs (psutil, sampled every 10 ms)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def run_item(name: str, fn: Callable[[Sizes, dict], Section], sizes: Sizes, ctx: dict) -> Section:
    """`fn(sizes, ctx)` timed as a whole; a failure becomes a "NAME: FAILED" section with its traceback
    (reported on stderr too) so the other items still run."""
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        sec = fn(sizes, ctx)
    except Exception as err:  # noqa: BLE001 - report it and go on with the others
        sec = Section(f"{name}: FAILED", notes=["```", traceback.format_exc().rstrip(), "```"])
        print(f"[bench] {name} failed: {err}", file=sys.stderr, flush=True)
    sec.seconds = time.perf_counter() - t0
    print(f"[bench] {name} done in {sec.seconds:.0f} s", file=sys.stderr, flush=True)
    return sec


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    import torch
    import transformers

    from rvlf.train.reproducibility import cpu_model

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = ""
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in text)
    mem = ""
    with contextlib.suppress(Exception):
        import psutil

        mem = f"{psutil.virtual_memory().total / GIB:.1f} GiB"
    return {
        "CPU": cpu_model(),
        "logical CPUs (usable)": f"{os.cpu_count()} ({usable})",
        "SIMD": flags,
        "memory": mem,
        "torch threads": str(torch.get_num_threads()),
        "python / torch / transformers": f"{platform.python_version()} / {torch.__version__} / {transformers.__version__}",
        "BLAS": "MKL" if torch.backends.mkl.is_available() else "other",
    }


def matmul_peak(sizes: Sizes, n: int | None = None) -> tuple[float, Row]:
    """Float32 matmul GFLOP/s of an n x n x n torch.matmul, median over the runs."""
    import torch

    n = n or (2048 if sizes.quick else 4096)
    a, b = torch.randn(n, n), torch.randn(n, n)
    reps = 2 if sizes.quick else 3
    s = timed(lambda: [torch.matmul(a, b) for _ in range(reps)], Sizes(max(sizes.warmup, 1), max(sizes.runs, 5), sizes.quick))
    g = rates(2 * n ** 3 * reps / 1e9, s)
    return statistics.median(g), Row(f"torch.matmul fp32 {n}x{n}x{n}", g, "GFLOP/s", "the peak used for utilisation below")


# ---------------------------------------------------------------- the report


def render(sections: list[Section], info: dict[str, str], header: list[str], analysis: list[str]) -> str:
    lines = ["# rvlf benchmarks", "", *header, "", "## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    for sec in sections:
        lines += ["", f"## {sec.title}", ""]
        if sec.rows:
            lines += ["| figure | median | min | max | unit | runs | notes |", "| --- | --- | --- | --- | --- | --- | --- |"]
            lines += ["| " + " | ".join(r.cells()) + " |" for r in sec.rows]
            lines.append("")
        lines += sec.notes
        lines.append(f"\n_Section wall time: {sec.seconds:.0f} s._")
    if analysis:
        lines += ["", "## Against the hardware", "", *analysis]
    return "\n".join(lines) + "\n"


class Report:
    """The Markdown report of one run: the command, the machine (taken when it is made), the date and load
    average, the sections so far and, for a full run, `analysis` as "Against the hardware".

    `write()` renders it and, with `out`, rewrites that file (with `append`: this run's sections, headed
    "Appended run", after what the file held when this run first wrote it)."""

    def __init__(self, out: str | None, sizes: Sizes, command: list[str], *, append: bool = False,
                 analysis: str | Path | None = None) -> None:
        self.out, self.sizes, self.command, self.append = out, sizes, command, append
        self.analysis = Path(analysis) if analysis else None
        self.sections: list[Section] = []
        self.started = dt.datetime.now().astimezone()
        self.load_start = os.getloadavg()
        self.info = machine()
        self._base: str | None = None  # the file before this run (with `append`)

    def write(self, final: bool) -> str:
        import torch

        info = dict(self.info)
        load_end = os.getloadavg()
        ended = dt.datetime.now().astimezone()
        started = self.started
        info["date"] = f"{started:%Y-%m-%d %H:%M %Z} to {ended:%H:%M} ({(ended - started).total_seconds() / 60:.1f} min)"
        info["load average (1/5/15 min) at start"] = " / ".join(f"{x:.2f}" for x in self.load_start)
        info["load average (1/5/15 min) at end" if final else "load average (1/5/15 min) so far (run in progress)"] = (
            " / ".join(f"{x:.2f}" for x in load_end))
        info["torch threads"] = str(torch.get_num_threads())
        sizes = self.sizes
        mode = "QUICK smoke run (1 warm-up, 2 runs, smaller sizes): not for comparison." if sizes.quick else (
            f"Full run: every figure is the median of {sizes.runs} timed runs after {sizes.warmup} warm-up, with min and max.")
        header = [f"`{' '.join(self.command)}`. {mode}",
                  "", "Load average above the number of cores means other work shared the CPUs: figures are then "
                  "lower and noisier than on an idle machine (compare min/max)."]
        analysis = (self.analysis.read_text().splitlines()
                    if self.analysis and self.analysis.is_file() and not sizes.quick else [])
        if self.append:
            text = render(self.sections, info, header, [])
            text = text.replace("\n## ", "\n### ").replace("# rvlf benchmarks", "## Appended run", 1)
            if self.out:
                if self._base is None:
                    self._base = Path(self.out).read_text() if Path(self.out).is_file() else ""
                Path(self.out).write_text(self._base.rstrip("\n") + "\n\n" + text)
            return text
        text = render(self.sections, info, header, analysis)
        if self.out:
            Path(self.out).write_text(text)
        return text
