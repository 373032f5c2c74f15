"""`make bench`: time every stage of rvlf and write a Markdown report (benchmarks/README.md).

    .venv/bin/python benchmarks/run.py --out benchmarks/results.md          # full (what `make bench` runs)
    .venv/bin/python benchmarks/run.py --quick --only scoring,generation     # smoke test, printed

Each figure is the median of the timed runs (default: 1 warm-up, then 5), with their min and max.
Rates are computed per run (work / seconds), so "min" is the slowest run. This is a script, not a test:
nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RVLF_FIXTURES", REPO.parent / "shared" / "fixtures"))
VIDEO = FIXTURES / "signer_58frames.mp4"


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
        return [self.name, _fmt(statistics.median(v)), _fmt(min(v)), _fmt(max(v)), self.unit, str(len(v)), self.note]


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _fmt(x: float) -> str:
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


GIB = 1024 ** 3


# ---------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    import torch
    import transformers

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


# ---------------------------------------------------------------- 1. keypoints


def bench_keypoints(sizes: Sizes, ctx: dict) -> Section:
    from rvlf.data.extract import Job, extract
    from rvlf.data.video import iter_frames

    sec = Section("1. Keypoints: MediaPipe Holistic on the fixture video")
    frames = sum(1 for _ in iter_frames(VIDEO))
    copies = 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = []
        for i in range(copies):
            v = tmp / f"v{i}{VIDEO.suffix}"
            v.symlink_to(VIDEO)
            videos.append(v)
        jobs = [Job(v, tmp / "out" / f"{v.stem}.npz") for v in videos]
        total = frames * copies

        def run(workers: int) -> None:
            summary = extract(jobs, encoder=None, workers=workers, overwrite=True, progress=False)
            if summary.failed or summary.frames != total:
                raise RuntimeError(f"extract failed: {summary.failed}")

        for workers in (1, 2):
            s = timed(lambda: run(workers), sizes)
            sec.rows.append(Row(f"extract, keypoints only, {workers} worker{'s' * (workers > 1)}", rates(total, s),
                                "frames/s", f"{copies} videos x {frames} frames"))
    from rvlf.data.video import video_fps

    sec.notes.append(
        f"`rvlf.data.extract.extract(jobs, encoder=None, workers=N, overwrite=True)` on {copies} copies of "
        f"`signer_58frames.mp4` ({frames} frames at {video_fps(VIDEO):.0f} fps): decode, MediaPipe Holistic "
        "(model_complexity 1, tracking mode), 77-point conversion, crop boxes, `.npz` write. With 2 workers each "
        "run starts a fresh spawn pool (MediaPipe and its models load in each worker), as one `rvlf extract` "
        "call does; over thousands of videos that start-up is paid once.")
    return sec


# ---------------------------------------------------------------- 2. DINOv2


def bench_dino(sizes: Sizes, ctx: dict) -> Section:
    import numpy as np
    from transformers import Dinov2Config, Dinov2Model

    from rvlf.data.features import DinoEncoder

    sec = Section("2. DINOv2 crop features (random weights, 224x224 crops, fp32)")
    archs = {"small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
             "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, kw in archs.items():
            path = Path(tmp) / arch
            Dinov2Model(Dinov2Config(patch_size=14, image_size=224, **kw)).save_pretrained(path)
            for batch in (1, 32):
                crops = (batch if sizes.quick else (3 if batch == 1 else (64 if arch == "small" else 32)))
                if sizes.quick and batch == 32:
                    crops = 32 if arch == "small" else 8
                enc = DinoEncoder(str(path), batch_size=batch)
                images = rng.integers(0, 256, size=(crops, 224, 224, 3), dtype=np.uint8)
                flops = count_flops(lambda: enc.encode(images[: min(crops, batch)]))
                s = timed(lambda: enc.encode(images), sizes)
                per_crop = flops / min(crops, batch)
                fps = rates(crops / 3, s)
                util = 100 * per_crop * crops / statistics.median(s) / (ctx["peak"] * 1e9)
                sec.rows.append(Row(f"{arch}, batch {batch}", fps, "frames/s",
                                    f"{crops} crops a run; {per_crop / 1e9:.1f} GFLOP a crop; {util:.0f}% of matmul peak"))
    sec.notes.append("`DinoEncoder(path, batch_size=B).encode(crops)` with a `Dinov2Model` saved from "
                     "`Dinov2Config` (small: 384 wide, 12 layers, 6 heads; base: 768, 12, 12; patch 14); "
                     "3 crops (face, two hands) make one frame, so frames/s = crops/s / 3. Utilisation = counted "
                     "FLOPs / median time / the float32 matmul peak measured in this run.")
    return sec


# ---------------------------------------------------------------- 3. stage 1


def bench_stage1(sizes: Sizes, ctx: dict) -> Section:
    import torch

    from rvlf.models.vlp import VLPConfig, VLPModel

    sec = Section("3. Stage 1 (VLP) training step")
    B, T, L, V = (2, 64, 16, 6201) if sizes.quick else (8, 300, 32, 6201)
    torch.manual_seed(0)
    model = VLPModel(VLPConfig(), vocab_size=V, pad_id=1, bos_id=0, eos_id=2).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    kp = torch.randn(B, T, 77, 3)
    fm = torch.ones(B, T, dtype=torch.bool)
    ids = torch.randint(3, V, (B, L))
    ids[:, -1] = 2
    am = torch.ones(B, L, dtype=torch.long)

    fwd_bwd, step = training_step(lambda: model(kp, fm, ids, am)["loss"], opt)
    flops = count_flops(fwd_bwd)
    s = timed(step, sizes)
    util = [100 * flops / x / (ctx["peak"] * 1e9) for x in s]
    n_params = sum(p.numel() for p in model.parameters())
    sec.rows.append(Row(f"step (batch {B}, {T} frames, {L} text tokens)", rates(B, s), "samples/s"))
    sec.rows.append(Row("step time", s, "s"))
    sec.rows.append(Row("model FLOP utilisation", util, "% of matmul peak",
                        f"{flops / 1e9:.0f} GFLOP a step (forward + backward, FlopCounterMode)"))
    sec.notes.append(f"`VLPModel(VLPConfig(), vocab_size={V}, pad_id=1, bos_id=0, eos_id=2)`, {n_params / 1e6:.1f} M "
                     f"parameters, dropout on (train mode), SGD with momentum; random keypoints `[{B},{T},77,3]` and "
                     f"{L}-token targets. The step is forward (skeleton encoder, text encoder, fine-grained "
                     "similarity, mBART decoder over the 6201-word vocabulary), backward and the optimizer update.")
    return sec


# ---------------------------------------------------------------- 4. SFT and GRPO at Qwen3-0.6B shape


WORDS = ("the cat dog sat ran on under mat big small red house tree we you they see like go home today rain sun "
         "morning evening weather north south wind cloud snow cold warm").split()


def _qwen_sign_lm(sizes: Sizes, lora: dict, tokenizer_texts: list[str]):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rvlf.models.fusion import FusionConfig, SignFusion
    from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
    from rvlf.models.slt_lm import SignLanguageLM, _stop_ids, add_lora, tiny_chat_tokenizer

    tok = tiny_chat_tokenizer(tokenizer_texts, "en")
    layers = 4 if sizes.quick or sizes.llm_reduced else 28
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
    return SignLanguageLM(enc, fusion, lm, tok), layers


def _sign_inputs(n: int, T: int):
    import torch

    g = torch.Generator().manual_seed(1)
    return torch.randn(n, T, 77, 3, generator=g), torch.ones(n, T, dtype=torch.bool), torch.randn(n, T, 3, 768, generator=g)


def bench_llm(sizes: Sizes, ctx: dict, parts: tuple[str, ...] = ("sft", "grpo")) -> Section:
    import torch

    from rvlf.rl.grpo import group_advantages, grpo_loss_terms
    from rvlf.rl.rewards import translation_reward

    sec = Section(f"4. {' and '.join(p.upper() for p in parts)} step{'s' * (len(parts) > 1)}, Qwen3-0.6B shape "
                  f"(random weights, LoRA{', REDUCED: 4 layers, 64 sign tokens' if sizes.quick or sizes.llm_reduced else ''})")
    reduced = sizes.quick or sizes.llm_reduced
    T = 64 if reduced else 300
    target_words = 8 if reduced else 24
    g = torch.Generator().manual_seed(2)
    texts = [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (target_words,), generator=g).tolist()) for _ in range(4)]

    from rvlf.models.slt_lm import build_prompt, tiny_chat_tokenizer

    tok = tiny_chat_tokenizer(texts, "en")
    prompt_tokens = build_prompt(tok)
    prompt = len(prompt_tokens.prefix) + len(prompt_tokens.suffix)
    target = len(tok(texts[0], add_special_tokens=False)["input_ids"]) + 1  # + <|im_end|>
    layers = 4 if reduced else 28
    n_total = 0

    n_in, k, new = 2, 2, (4 if sizes.quick else 8)  # the GRPO step

    # ---- SFT: Table 10 adapter (r 16, alpha 32, dropout 0.3 on q/v), AdamW on LoRA + projector
    if "sft" in parts:
        model, layers = _qwen_sign_lm(sizes, dict(r=16, alpha=32, dropout=0.3), texts)
        n_total = sum(p.numel() for p in model.lm.parameters())
        assert (prompt, target) == (len(model.prompt.prefix) + len(model.prompt.suffix), len(model._target_ids(texts[:1])[0]))
        groups = model.trainable_parameters()
        opt = torch.optim.AdamW([{"params": groups["lora"], "lr": 2e-4}, {"params": groups["projector"], "lr": 2e-5}])
        kp, fm, dino = _sign_inputs(1, T)
        model.train()

        sft_fwd_bwd, sft_step = training_step(lambda: model(kp, fm, dino, texts[:1]), opt)
        flops = count_flops(sft_fwd_bwd)
        with PeakRSS() as mem:
            s = timed(sft_step, sizes)
        util = 100 * flops / statistics.median(s) / (ctx["peak"] * 1e9)
        sec.rows.append(Row(f"SFT step, batch 1 ({T} sign + {prompt} prompt + {target} target tokens)", s, "s",
                            f"{flops / 1e9:.0f} GFLOP; {util:.0f}% of matmul peak"))
        sec.rows.append(Row("SFT peak RSS during the steps", [mem.peak / GIB], "GiB",
                            f"{mem.start / GIB:.2f} GiB before the first timed step"))
        del model, opt, groups

    # ---- GRPO: Table 11 adapter (r 64, alpha 128, dropout 0.05); 2 inputs x 2 samples, short completions
    if "grpo" in parts:
        model, _ = _qwen_sign_lm(sizes, dict(r=64, alpha=128, dropout=0.05), texts)
        n_total = sum(p.numel() for p in model.lm.parameters())
        model.lm.generation_config.min_new_tokens = new  # a fixed amount of work: every completion has `new` tokens
        for p in model.fusion.parameters():
            p.requires_grad_(False)
        opt = torch.optim.AdamW(model.trainable_parameters()["lora"], lr=2e-5)
        kp, fm, dino = _sign_inputs(n_in, T)
        refs = [t for t in texts[:n_in] for _ in range(k)]
        phases: dict[str, list[float]] = {"generate": [], "reference log-probs": [], "policy forward + backward": []}

        def grpo_step() -> None:
            t0 = time.perf_counter()
            model.eval()
            gen = model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=k, max_new_tokens=new)
            t1 = time.perf_counter()
            rewards = torch.tensor(translation_reward(gen.texts, refs, "en"), dtype=torch.float32)
            adv = group_advantages(rewards, k)
            model.train()
            with torch.no_grad(), model.adapter_disabled():
                ref = model.completion_logprobs(kp, fm, dino, gen.completion_ids, gen.completion_mask, k)
            t2 = time.perf_counter()
            logps = model.completion_logprobs(kp, fm, dino, gen.completion_ids, gen.completion_mask, k)
            loss, _ = grpo_loss_terms(logps, logps.detach(), ref, adv, gen.completion_mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            t3 = time.perf_counter()
            for name, x in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
                phases[name].append(x)

        flops = count_flops(grpo_step)  # doubles as the warm-up
        for v in phases.values():
            v.clear()
        with PeakRSS() as mem:
            s = timed(grpo_step, Sizes(0, sizes.runs, sizes.quick))
        util = 100 * flops / statistics.median(s) / (ctx["peak"] * 1e9)
        sec.rows.append(Row(f"GRPO step, {n_in} inputs x {k} samples, {new} new tokens", s, "s",
                            f"{flops / 1e9:.0f} GFLOP; {util:.0f}% of matmul peak"))
        for name, v in phases.items():
            sec.rows.append(Row(f"  of which {name}", v, "s"))
        sec.rows.append(Row("GRPO peak RSS during the steps", [mem.peak / GIB], "GiB",
                            f"{mem.start / GIB:.2f} GiB before the first timed step"))
    sec.notes.append(
        f"`SignLanguageLM` over a randomly initialised `Qwen3ForCausalLM` of Qwen3-0.6B's shape (hidden 1024, "
        f"{layers} layers, 16 heads, 8 KV heads, head_dim 128, intermediate 3072, vocabulary 151936, tied; "
        f"{n_total / 1e6:.0f} M parameters, fp32) with `add_lora` as in Table 10 (SFT: r 16, alpha 32, dropout 0.3, "
        "q/v) and Table 11 (GRPO: r 64, alpha 128, dropout 0.05); a tiny skeleton encoder (frozen, as in SFT) and "
        "the fusion + projector (512 -> 1024 -> 1024 from a 64-wide encoder, DINOv2-base-sized crop features). "
        + ("**REDUCED SIZE (`--llm-size reduced`): 4 of the 28 layers and 64 sign tokens, not the paper's shape; "
           "the figures hold for this reduced model only.** " if reduced else "")
        + f"Sequences: {T} sign tokens (the paper's cap is 300), the chat prompt ({prompt} tokens from a word-level "
        f"ChatML tokenizer; Qwen's own BPE gives about 50) and a {target_words}-word target. "
        "On 2 CPU cores this is slow, so SFT is one sample a step (the paper: batch 8 per GPU) and the GRPO step "
        f"is {n_in} inputs x {k} samples with {new}-token completions (the paper: 8 x 8 and up to 64 tokens); "
        "nothing is extrapolated to the paper's sizes. The GRPO step is the recipe's `train_step` without the "
        "trainer: one batched KV-cached sampling call, Eq. 15 rewards, Eq. 16 advantages, reference log-probs "
        "with the adapter disabled, policy log-probs with gradient, Eqs. 17-19 loss, backward, AdamW. "
        "Peak RSS is sampled every 10 ms (psutil) during the timed steps; it includes what earlier benchmarks "
        "in this process left allocated. Sampling is restricted to the tokenizer's ids and forced to "
        f"{new} tokens (`min_new_tokens`) so every step does the same work.")
    return sec


# ---------------------------------------------------------------- 5. GRPO generation


def bench_generation(sizes: Sizes, ctx: dict) -> Section:
    import torch

    from rvlf.models.fusion import FusionConfig, SignFusion
    from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
    from rvlf.models.slt_lm import SignLanguageLM, add_lora, build_tiny_qwen3, tiny_chat_tokenizer

    sec = Section("5. GRPO generation: one batched call against one sample at a time")
    n_in, k = 8, 8
    T, new = (32, 8) if sizes.quick else (300, 16)
    tok = tiny_chat_tokenizer([" ".join(WORDS)], "en")
    torch.manual_seed(0)
    lm = build_tiny_qwen3(tok, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256)
    lm.generation_config.min_new_tokens = new  # same number of tokens in both ways
    lm = add_lora(lm, r=64, alpha=128, dropout=0.05)
    enc = SkeletonEncoder(SkeletonEncoderConfig(gcn_channels=[8, 16], d_model=32, num_layers=1, num_heads=2,
                                                ff_dim=64, dropout=0.0))
    fusion = SignFusion(FusionConfig(dino_dim=16, sign_dim=32), lm.config.hidden_size)
    model = SignLanguageLM(enc, fusion, lm, tok).eval()
    g = torch.Generator().manual_seed(1)
    kp, fm, dino = torch.randn(n_in, T, 77, 3, generator=g), torch.ones(n_in, T, dtype=torch.bool), torch.randn(n_in, T, 3, 16, generator=g)
    kw = dict(num_beams=1, do_sample=True, max_new_tokens=new)

    def batched() -> None:
        out = model.generate(kp, fm, dino, num_return_sequences=k, **kw)
        assert out.completion_ids.shape == (n_in * k, new), out.completion_ids.shape

    def one_at_a_time() -> None:
        for i in range(n_in):
            for _ in range(k):
                model.generate(kp[i:i + 1], fm[i:i + 1], dino[i:i + 1], num_return_sequences=1, **kw)

    sb = timed(batched, sizes)
    ss = timed(one_at_a_time, sizes)
    tokens = n_in * k * new
    sec.rows.append(Row(f"batched: {n_in} inputs x {k} samples in one call", sb, "s", f"{_fmt(tokens / statistics.median(sb))} tokens/s"))
    sec.rows.append(Row(f"one at a time: {n_in * k} calls of 1 sample", ss, "s", f"{_fmt(tokens / statistics.median(ss))} tokens/s"))
    sec.rows.append(Row("speed-up (one at a time / batched)", [a / b for a, b in zip(ss, sb)], "x", "per run pair"))
    n_lm = sum(p.numel() for p in lm.parameters())
    sec.notes.append(
        f"`SignLanguageLM.generate(..., do_sample=True, num_return_sequences=8)` (KV cache on) on the demo-sized LM: "
        f"`build_tiny_qwen3(tok, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256)` "
        f"+ a GRPO LoRA (r 64) = {n_lm / 1e6:.2f} M parameters, vocabulary {len(tok)}; {T} sign frames per input "
        f"(a tiny 32-wide skeleton encoder), every completion forced to {new} tokens (`min_new_tokens`). "
        "The batched call prefills 64 sequences at once and decodes them together; the other way runs 64 "
        "separate prefills and decodes of a single sequence. With a model this small the one-at-a-time cost is "
        "dominated by per-call and per-token Python overhead, which batching amortises.")
    return sec


# ---------------------------------------------------------------- 6. scoring


def bench_scoring(sizes: Sizes, ctx: dict) -> Section:
    import random

    from sacrebleu.metrics.bleu import BLEU

    from rvlf.text.metrics import batch_sentence_scores, corpus_scores

    sec = Section("6. Scoring sentence pairs: rvlf.text.metrics against sacrebleu")
    n = 1000 if sizes.quick else 10_000
    rnd = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    refs, hyps = [], []
    for _ in range(n):
        ref = rnd.choices(vocab, k=rnd.randint(5, 25))
        hyp = [w if rnd.random() < 0.6 else rnd.choice(vocab) for w in ref]
        hyp = hyp[: max(1, len(hyp) + rnd.randint(-3, 3))]
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))

    def rvlf_scores():
        return batch_sentence_scores(hyps, refs, "en"), corpus_scores(hyps, refs, "en")

    sent_bleus = [BLEU(tokenize="none", smooth_method="none", effective_order=True, max_ngram_order=m) for m in range(1, 5)]
    corp_bleus = [BLEU(tokenize="none", smooth_method="none", max_ngram_order=m) for m in range(1, 5)]

    def sacrebleu_all():
        sent = [[b.sentence_score(h, [r]).score for b in sent_bleus] for h, r in zip(hyps, refs)]
        corp = [b.corpus_score(hyps, [refs]).score for b in corp_bleus]
        return sent, corp

    def sacrebleu_bleu4():
        b = sent_bleus[3]
        return [b.sentence_score(h, [r]).score for h, r in zip(hyps, refs)]

    # the same numbers (a sanity check, not a test)
    ours, corpus = rvlf_scores()
    theirs, theirs_corpus = sacrebleu_all()
    worst = max(abs(o[f"bleu{m + 1}"] - t[m]) for o, t in zip(ours, theirs) for m in range(4))
    worst = max([worst] + [abs(corpus[f"bleu{m + 1}"] - theirs_corpus[m]) for m in range(4)])

    sr = timed(rvlf_scores, sizes)
    sa = timed(sacrebleu_all, sizes)
    s4 = timed(sacrebleu_bleu4, sizes)
    sec.rows.append(Row(f"rvlf: batch_sentence_scores + corpus_scores, {n:,} pairs", rates(n, sr), "pairs/s",
                        "BLEU-1..4 + ROUGE-L per sentence, and corpus"))
    sec.rows.append(Row("sacrebleu: sentence_score x 4 orders + corpus_score x 4", rates(n, sa), "pairs/s",
                        "BLEU-1..4 only (no ROUGE-L)"))
    sec.rows.append(Row("sacrebleu: sentence_score, BLEU-4 only", rates(n, s4), "pairs/s"))
    sec.rows.append(Row("speed-up, same BLEU work (sacrebleu / rvlf time)", [a / b for a, b in zip(sa, sr)], "x", "per run pair"))
    sec.rows.append(Row("speed-up against sacrebleu's BLEU-4 alone", [a / b for a, b in zip(s4, sr)], "x", "per run pair"))
    sec.notes.append(
        f"{n:,} synthetic English pairs (5-25 words from a 400-word vocabulary, hypotheses ~60% overlapping). "
        "sacrebleu: `BLEU(tokenize='none', smooth_method='none', effective_order=True, max_ngram_order=m)."
        "sentence_score(h, [r])` per pair for m = 1..4 and `corpus_score` for m = 1..4. rvlf computes the "
        "n-gram statistics once per pair and derives BLEU-1..4 from them (and ROUGE-L on top). "
        f"Largest difference between the two BLEU values over all pairs and orders: {worst:.2g}.")
    return sec


# ---------------------------------------------------------------- 7. rvlf translate


def bench_translate(sizes: Sizes, ctx: dict) -> Section:
    from rvlf.cli import main
    from rvlf.data.features import save_tiny_dinov2
    from rvlf.data.video import iter_frames, video_fps

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_runs  # noqa: E402

    sec = Section("7. `rvlf translate` end to end on the fixture video")
    frames = sum(1 for _ in iter_frames(VIDEO))
    seconds_of_video = frames / video_fps(VIDEO)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            try:  # the tests' tiny stage-1 and SFT runs (16-dim DINOv2 features)
                _, _, sft = tiny_runs(root, sft_steps=2)
            except AssertionError:
                raise RuntimeError("building the tiny checkpoint failed:\n" + quiet.getvalue()[-2000:]) from None
            dino = save_tiny_dinov2(root / "dino16", hidden_size=16, intermediate_size=32)
        argv = ["translate", str(VIDEO), "--checkpoint", str(sft / "last"), "--dino", str(dino)]

        def run() -> None:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = main(argv)
            if rc != 0 or not out.getvalue().startswith(VIDEO.stem):
                raise RuntimeError(f"rvlf translate failed (rc {rc}): {out.getvalue()[-500:]}")

        s = timed(run, sizes)
    sec.rows.append(Row("`rvlf translate signer_58frames.mp4`", s, "s"))
    sec.rows.append(Row("seconds per second of video", [x / seconds_of_video for x in s], "s/s",
                        f"{frames} frames = {seconds_of_video:.2f} s of video"))
    sec.notes.append(
        "`rvlf.cli.main(['translate', VIDEO, '--checkpoint', SFT/last, '--dino', TINY_DINO])` in this process (the "
        "interpreter start and first imports are not counted; each run loads the checkpoint, runs MediaPipe "
        "Holistic over every frame, crops, DINOv2, the sign LM and beam search of width 5). The checkpoint is a "
        "2-step SFT run of the tests' tiny models (`tests/conftest.py: tiny_runs`: the demo's 2-layer 128-wide Qwen3, a 32-wide skeleton encoder) and the "
        "DINOv2 is 1 layer, 16 wide, so the time is almost all decoding and MediaPipe: a real checkpoint adds "
        "DINOv2-base (section 2) and the LLM's beam search.")
    return sec


# ---------------------------------------------------------------- the report


BENCHES: dict[str, Callable[[Sizes, dict], Section]] = {
    "keypoints": bench_keypoints,
    "dino": bench_dino,
    "stage1": bench_stage1,
    "generation": bench_generation,
    "scoring": bench_scoring,
    "translate": bench_translate,
    "llm": bench_llm,  # the longest: last, so the report holds everything else if it is stopped
}
OPTIONAL = {  # not in the default list: one half of `llm` each
    "sft": lambda sizes, ctx: bench_llm(sizes, ctx, ("sft",)),
    "grpo": lambda sizes, ctx: bench_llm(sizes, ctx, ("grpo",)),
}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="write the Markdown report here (default: print it)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 warm-up, 2 runs, smaller sizes")
    parser.add_argument("--only", default=None, metavar="NAME[,NAME]", help=f"a subset of: {', '.join(BENCHES)} (sft, grpo: one half of llm)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per figure (default 5, --quick 2)")
    parser.add_argument("--llm-size", choices=("paper", "reduced"), default="paper",
                        help="item 4 at Qwen3-0.6B's full shape and 300 sign tokens (paper), or 4 layers and 64 "
                             "sign tokens (reduced: a loaded or slow machine)")
    parser.add_argument("--append", action="store_true",
                        help="append this run's sections (with its own machine, date and load) to --out")
    parser.add_argument("--analysis", default=str(Path(__file__).with_name("analysis.md")),
                        help="Markdown appended as the 'Against the hardware' section, if the file exists")
    args = parser.parse_args(argv)
    names = list(BENCHES) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES and n not in OPTIONAL]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join([*BENCHES, *OPTIONAL])}")
    sizes = Sizes(1, args.runs or (2 if args.quick else 5), args.quick, args.llm_size == "reduced")

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    started = dt.datetime.now().astimezone()
    load_start = os.getloadavg()
    info = machine()
    peak, peak_row = matmul_peak(sizes)
    ctx = {"peak": peak}
    sections = [Section("0. Float32 matmul peak (measured now)", [peak_row])]
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            sec = (BENCHES.get(name) or OPTIONAL[name])(sizes, ctx)
        except Exception as err:  # noqa: BLE001 - report it and go on with the others
            sec = Section(f"{name}: FAILED", notes=["```", traceback.format_exc().rstrip(), "```"])
            print(f"[bench] {name} failed: {err}", file=sys.stderr, flush=True)
        sec.seconds = time.perf_counter() - t0
        sections.append(sec)
        print(f"[bench] {name} done in {sec.seconds:.0f} s", file=sys.stderr, flush=True)
        if args.out:  # after every section, so a stopped run still leaves what it measured
            write(args, sizes, sections, info, started, load_start, argv, final=name == names[-1])
    if args.out:
        print(f"[bench] wrote {args.out}", file=sys.stderr)
    else:
        print(write(args, sizes, sections, info, started, load_start, argv, final=True))
    return 0


def write(args, sizes: Sizes, sections: list[Section], info: dict[str, str], started, load_start, argv,
          final: bool) -> str:
    import torch

    info = dict(info)
    load_end = os.getloadavg()
    ended = dt.datetime.now().astimezone()
    info["date"] = f"{started:%Y-%m-%d %H:%M %Z} to {ended:%H:%M} ({(ended - started).total_seconds() / 60:.1f} min)"
    info["load average (1/5/15 min) at start"] = " / ".join(f"{x:.2f}" for x in load_start)
    info["load average (1/5/15 min) at end" if final else "load average (1/5/15 min) so far (run in progress)"] = (
        " / ".join(f"{x:.2f}" for x in load_end))
    info["torch threads"] = str(torch.get_num_threads())
    mode = "QUICK smoke run (1 warm-up, 2 runs, smaller sizes): not for comparison." if args.quick else (
        f"Full run: every figure is the median of {sizes.runs} timed runs after {sizes.warmup} warm-up, with min and max.")
    header = [f"`{' '.join(['benchmarks/run.py', *(argv if argv is not None else sys.argv[1:])])}`. {mode}",
              "", "Load average above the number of cores means other work shared the CPUs: figures are then "
              "lower and noisier than on an idle machine (compare min/max)."]
    analysis_path = Path(args.analysis)
    analysis = analysis_path.read_text().splitlines() if analysis_path.is_file() and not args.quick else []
    if args.append:
        text = render(sections, info, header, [])
        text = text.replace("\n## ", "\n### ").replace("# rvlf benchmarks", "## Appended run", 1)
        if args.out:
            if not hasattr(args, "_base"):
                args._base = Path(args.out).read_text() if Path(args.out).is_file() else ""
            Path(args.out).write_text(args._base.rstrip("\n") + "\n\n" + text)
        return text
    text = render(sections, info, header, analysis)
    if args.out:
        Path(args.out).write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
