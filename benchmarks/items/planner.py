"""11. `rvlf plan-memory` against measurement at full depth: a random Qwen3-0.6B (all 28 layers), 300 sign
tokens, one SLT-SFT step (batch 1) and one SLT-GRPO step (8 samples of one input, micro-batches), and
group prefix sharing at full depth. See benchmarks/README.md."""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

from benchmarks.harness import GIB, WORDS, Row, Section, Sizes, fmt, qwen06b_sign_lm

T, K, NEW, MICRO = 300, 8, 8, 2


def _vm(field: str) -> int:
    """Bytes of a `VmRSS` / `VmHWM` line of /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss() -> None:
    """Start a new peak-RSS (VmHWM) window (Linux: `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _measure_state(model, optimizer) -> dict[str, int]:
    params = list(model.parameters())
    return {
        "frozen": _bytes(p for p in params if not p.requires_grad),
        "trainable": _bytes(p for p in params if p.requires_grad),
        "gradients": _bytes(p.grad for p in params if p.grad is not None),
        "optimizer": _bytes(v for st in optimizer.state.values() for v in st.values() if hasattr(v, "numel")
                            and v.dim() > 0),
    }


def _rows(sec: Section, label: str, measured: dict[str, int], plan, phase: str, act_keys: tuple[str, ...],
          rss: int, notes: list[str]) -> None:
    planned = {"frozen": plan.params["frozen"], "trainable": plan.params["trainable"],
               "gradients": plan.gradients, "optimizer": plan.optimizer,
               "activations": sum(plan.phases[phase][k] for k in act_keys)}
    planned_total = sum(planned.values())
    for key, unit_note in (("frozen", "weights, frozen"), ("trainable", "weights, trainable (fp32)"),
                           ("gradients", "gradients (fp32)"), ("optimizer", "AdamW states"),
                           ("activations", f"saved for backward ({phase}: {' + '.join(act_keys)})")):
        m, p = measured[key], planned[key]
        off = (p - m) / m * 100 if m else 0.0
        sec.rows.append(Row(f"{label}: {unit_note}, measured / planned GiB", [m / GIB], "GiB",
                            f"planned {fmt(p / GIB)} GiB ({off:+.1f}%)"))
        if m and abs(off) > 15:
            notes.append(f"{label} {key}: the plan is {off:+.0f}% off the measurement.")
    sec.rows.append(Row(f"{label}: peak RSS of the step above the RSS before the model was built", [rss / GIB], "GiB",
                        f"planned step total without the 1.5 GiB GPU overhead {fmt(planned_total / GIB)} GiB"))


def run(sizes: Sizes, ctx: dict) -> Section:
    import torch

    from benchmarks.items.grpo_group import _SavedActivations
    from rvlf.config import DataConfig, LLMConfig, TrainConfig
    from rvlf.runs.memory_plan import plan_llm_stage
    from rvlf.models.fusion import FusionConfig
    from rvlf.models.skeleton import SkeletonEncoderConfig
    from rvlf.models.slt_lm import SignLanguageLM
    from rvlf.train.recipe_configs import GRPOConfig, GRPOParams, SFTConfig
    from rvlf.train.grpo import GRPOStage
    from rvlf.train.loop import Trainer

    layers = 2 if sizes.quick else 28
    sec = Section(f"12. Memory planner against measurement: random Qwen3-0.6B, {layers} of 28 layers, {T} sign "
                  "tokens, SLT-SFT batch 1 and SLT-GRPO 8 samples in micro-batches of 2; prefix sharing")
    notes: list[str] = []
    g = torch.Generator().manual_seed(3)
    text = " ".join(WORDS[i] for i in torch.randint(len(WORDS), (12,), generator=g).tolist())
    encoder_cfg = SkeletonEncoderConfig(gcn_channels=[16, 32], d_model=64, num_layers=1, num_heads=2, ff_dim=128,
                                        dropout=0.0)  # as `qwen06b_sign_lm` builds it
    batch = {"keypoints": torch.randn(1, T, 77, 3, generator=g), "frame_mask": torch.ones(1, T, dtype=torch.bool),
             "dino": torch.randn(1, T, 3, 768, generator=g), "texts": [text]}

    def config(cls, lora: dict):
        cfg = cls(data=DataConfig(lang="en", max_frames=T), encoder=encoder_cfg,
                  fusion=FusionConfig(dino_dim=768, sign_dim=64),
                  llm=LLMConfig(name_or_path="Qwen/Qwen3-0.6B", dtype="float32", lora_r=lora["r"],
                                lora_alpha=lora["alpha"], lora_dropout=lora["dropout"]))
        cfg.encoder.max_frames = max(cfg.encoder.max_frames, T)
        return cfg

    # ---- SLT-SFT, batch 1 (Table 10 adapter: r 16, alpha 32, dropout 0.3, q/v) --------------------------------
    gc.collect()
    rss0 = _vm("VmRSS")
    sft_lora = dict(r=16, alpha=32, dropout=0.3)
    model = qwen06b_sign_lm(layers, sft_lora, [text])
    prompt = len(model.prompt.prefix) + len(model.prompt.suffix)
    target = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    cfg = config(SFTConfig, sft_lora)
    cfg.train = TrainConfig(batch_size=1, optimizer="adamw", mixed_precision="no")
    plan = plan_llm_stage(cfg, "sft", prompt_tokens=prompt, target_tokens=target, vocab_size=151936)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    saved = _SavedActivations(model)
    model.train()
    _reset_peak_rss()
    t0 = time.perf_counter()
    with saved.hooks:
        loss = model(batch["keypoints"], batch["frame_mask"], batch["dino"], batch["texts"])
    loss.backward()
    opt.step()
    sft_seconds = time.perf_counter() - t0
    measured = _measure_state(model, opt) | {"activations": saved.peak}
    _rows(sec, "SFT", measured, plan, "forward/backward", ("activations", "logits"), _vm("VmHWM") - rss0, notes)
    sec.rows.append(Row("SFT step (forward, backward, AdamW)", [sft_seconds], "s", f"{prompt} prompt + {T} sign + "
                        f"{target + 1} target tokens"))
    del model, opt, loss, saved
    gc.collect()

    # ---- SLT-GRPO: one input, 8 samples, micro-batches of 2 (Table 11 adapter: r 64, alpha 128, dropout 0.05) --
    rss0 = _vm("VmRSS")
    grpo_lora = dict(r=64, alpha=128, dropout=0.05)
    model = qwen06b_sign_lm(layers, grpo_lora, [text])
    for p in model.fusion.parameters():
        p.requires_grad_(False)
    model.lm.generation_config.min_new_tokens = NEW  # every completion has NEW tokens
    cfg = config(GRPOConfig, grpo_lora)
    cfg.grpo = GRPOParams(num_generations=K, max_new_tokens=NEW, micro_batch_size=MICRO)
    cfg.train = TrainConfig(epochs=1, batch_size=1, optimizer="adamw", lr=2e-5, weight_decay=0.0,
                            scheduler="constant", warmup_epochs=0, progress=False, mixed_precision="no")
    plan = plan_llm_stage(cfg, "grpo", prompt_tokens=prompt, target_tokens=NEW, vocab_size=151936)
    stage = GRPOStage(cfg, model, None, {})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(stage, model=stage.policy, param_groups=stage.param_groups(), train_set=[0],
                          dev_set=None, collate_fn=lambda x: x, cfg=cfg.train, out_dir=out)
    stage.trainer = trainer
    saved = _SavedActivations(stage.policy)
    grads: list[int] = []
    zero_grad = trainer.optimizer.zero_grad

    def counting_zero_grad(*args, **kwargs):  # the step zeroes the gradients after its update: count them first
        grads.append(_bytes(p.grad for p in model.parameters() if p.grad is not None))
        return zero_grad(*args, **kwargs)

    trainer.optimizer.zero_grad = counting_zero_grad
    _reset_peak_rss()
    t0 = time.perf_counter()
    with saved.hooks:
        stage.train_step(batch, trainer)
    grpo_seconds = time.perf_counter() - t0
    measured = _measure_state(model, trainer.optimizer) | {"gradients": max(grads), "activations": saved.peak}
    _rows(sec, "GRPO", measured, plan, "policy forward/backward", ("activations", "logits"),
          _vm("VmHWM") - rss0, notes)
    sec.rows.append(Row(f"GRPO step ({K} samples of {NEW} tokens, micro-batches of {MICRO}, reference pass, update)",
                        [grpo_seconds], "s"))

    # ---- group prefix sharing at full depth: prefill of one prompt shared by 8 samples vs 8 prefills ---------
    model.eval()
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(1 + max(1, min(sizes.runs, 2))):
        for share in (False, True):  # interleaved: both see the same load
            t0 = time.perf_counter()
            SignLanguageLM.generate(model, batch["keypoints"], batch["frame_mask"], batch["dino"], num_beams=1,
                                    do_sample=True, num_return_sequences=K, max_new_tokens=1, share_prefix=share)
            if r:  # the first round warms up
                times[share].append(time.perf_counter() - t0)
    sec.rows += [
        Row(f"prefill of {K} copies of the prompt (no sharing)", times[False], "s", f"{prompt + T} tokens each"),
        Row(f"prefill once, KV cache repeated for the {K} samples (sharing)", times[True], "s"),
        Row("prefill speed-up from sharing (without / with)", [a / b for a, b in zip(times[False], times[True])], "x",
            "per run pair"),
    ]
    sec.notes.append(
        f"A randomly initialised `Qwen3ForCausalLM` of Qwen3-0.6B's shape ({layers} layers, hidden 1024, 16 heads, 8 "
        "KV heads, head_dim 128, intermediate 3072, vocabulary 151,936, tied; float32) inside rvlf's "
        "`SignLanguageLM` (small skeleton encoder, fusion of Eq. 12 for DINOv2-base features). The plan is "
        "`rvlf.runs.memory_plan.plan_llm_stage` (what `rvlf plan-memory` prints) for the same configuration: Qwen/Qwen3-0.6B "
        "from the built-in table, `llm.dtype=float32`, no mixed precision, the measured prompt and target lengths. "
        "Weights, gradients and AdamW states are the bytes of the tensors after the step; activations are the "
        "distinct non-parameter storages autograd saved during one forward (`saved_tensors_hooks`; GRPO: the "
        "largest policy micro-batch forward), against the plan's activations + logits of that phase. Peak RSS "
        "(VmHWM, reset before the step) above the RSS before the model was built includes the allocator's "
        "slack and what the CPU kernels allocate, and is shown next to the plan's total without the GPU "
        "overhead. Prefill: `SignLanguageLM.generate` with 1 new token, sampling, 8 return sequences, "
        "`share_prefix` off and on.")
    sec.notes += notes or ["Every term within 15% of the measurement."]
    return sec
