"""5b. GRPO at the paper's group shape (8 inputs x 8 samples, 300 sign tokens, Qwen3-0.6B's width and
vocabulary): group prefix sharing and micro-batches, before/after in one run. See benchmarks/README.md."""

from __future__ import annotations

import dataclasses
import time

from benchmarks.harness import GIB, WORDS, Row, Section, Sizes, fmt, qwen06b_sign_lm


def _policy(layers: int, texts: list[str]):
    """A `SignLanguageLM` over a random Qwen3 of Qwen3-0.6B's width and vocabulary with `layers` layers, the
    GRPO adapter of Table 11 (r 64, alpha 128, dropout 0.05, q/v), frozen encoder and fusion."""
    model = qwen06b_sign_lm(layers, dict(r=64, alpha=128, dropout=0.05), texts)
    for p in model.fusion.parameters():
        p.requires_grad_(False)
    return model


class _SavedActivations:
    """Bytes autograd keeps for backward during one forward of `module` (distinct storages, parameters
    excluded), maximum over the forwards: the activation memory a micro-batch bounds."""

    def __init__(self, module) -> None:
        import torch

        self.params = {p.untyped_storage().data_ptr() for p in module.parameters()}
        self.seen: set[int] = set()
        self.current = self.peak = 0
        module.register_forward_pre_hook(lambda *_: self._start())
        module.register_forward_hook(lambda *_: self._stop())
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _start(self) -> None:
        self.seen.clear()
        self.current = 0

    def _stop(self) -> None:
        self.peak = max(self.peak, self.current)

    def _pack(self, t):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.params and ptr not in self.seen:
            self.seen.add(ptr)
            self.current += storage.nbytes()
        return t


def run(sizes: Sizes, ctx: dict) -> Section:
    import tempfile

    import torch

    from rvlf.config import DataConfig, LLMConfig, TrainConfig
    from rvlf.models.slt_lm import SignLanguageLM
    from rvlf.train.recipe_configs import GRPOConfig, GRPOParams
    from rvlf.train.grpo import GRPOStage
    from rvlf.train.loop import Trainer

    n_in, k = 8, 8
    layers, T, new, micro = (1, 32, 4, 8) if sizes.quick else (1, 300, 8, 8)
    runs = max(1, min(sizes.runs, 2))  # a step takes minutes on 2 cores: at most 2 timed rounds
    sec = Section(f"5b. GRPO at the paper's group shape: {n_in} inputs x {k} samples, {T} sign tokens, Qwen3-0.6B "
                  f"width, {layers} of its 28 layers: prefix sharing and micro-batches")
    g = torch.Generator().manual_seed(2)
    texts = [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (12,), generator=g).tolist()) for _ in range(n_in)]
    model = _policy(layers, texts)
    model.lm.generation_config.min_new_tokens = new  # every completion has `new` tokens: the same work each step
    cfg = GRPOConfig(data=DataConfig(lang="en"), llm=LLMConfig(lora_r=64, lora_alpha=128, lora_dropout=0.05),
                     grpo=GRPOParams(num_generations=k, max_new_tokens=new))
    cfg.train = TrainConfig(epochs=1, batch_size=n_in, optimizer="adamw", lr=2e-5, weight_decay=0.0,
                            scheduler="constant", warmup_epochs=0, progress=False)
    stage = GRPOStage(cfg, model, None, {})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(stage, model=stage.policy, param_groups=stage.param_groups(), train_set=list(range(n_in)),
                          dev_set=None, collate_fn=lambda x: x, cfg=cfg.train, out_dir=out)
    prompt = len(model.prompt.prefix) + len(model.prompt.suffix)
    g = torch.Generator().manual_seed(1)
    batch = {"keypoints": torch.randn(n_in, T, 77, 3, generator=g), "frame_mask": torch.ones(n_in, T, dtype=torch.bool),
             "dino": torch.randn(n_in, T, 3, 768, generator=g), "texts": texts}
    saved = _SavedActivations(stage.policy)
    gen_seconds: list[float] = []

    def sampler(share: bool):
        def generate(*args, **kwargs):
            t0 = time.perf_counter()
            out = SignLanguageLM.generate(model, *args, share_prefix=share, **kwargs)
            gen_seconds.append(time.perf_counter() - t0)
            assert out.completion_ids.shape == (n_in * k, new), out.completion_ids.shape
            return out
        return generate

    variants = {"before": (False, 0), "after": (True, 0), "micro": (True, micro)}
    times = {v: [] for v in variants}
    gens = {v: [] for v in variants}
    acts = {v: 0 for v in variants}
    for r in range(sizes.warmup + runs):  # a warm-up round runs the 'after' step only
        for name, (share, m) in (variants.items() if r >= sizes.warmup else [("after", variants["after"])]):
            # interleaved: the three variants of a round see the same machine load
            model.generate = sampler(share)
            stage.cfg = dataclasses.replace(cfg, grpo=dataclasses.replace(cfg.grpo, micro_batch_size=m))
            saved.peak = 0
            gen_seconds.clear()
            t0 = time.perf_counter()
            with saved.hooks:
                stage.train_step(batch, trainer.step_tools())
            if r >= sizes.warmup:
                times[name].append(time.perf_counter() - t0)
                gens[name].append(gen_seconds[0])
            acts[name] = saved.peak
    del model.generate

    seqs = n_in * k
    sec.rows += [
        Row(f"generation, {seqs} prompts prefilled ({n_in} x {k} copies; before)", gens["before"], "s"),
        Row(f"generation, {n_in} prompts prefilled once, cache shared by their {k} samples (after)", gens["after"], "s"),
        Row("generation speed-up (before / after)", [a / b for a, b in zip(gens["before"], gens["after"])], "x",
            "per run pair"),
        Row("GRPO step, before (prefill x 8, one pass of 64 sequences)", times["before"], "s"),
        Row("GRPO step, after (prefix sharing, one pass of 64 sequences)", times["after"], "s"),
        Row("GRPO step speed-up (before / after)", [a / b for a, b in zip(times["before"], times["after"])], "x",
            "per run pair"),
        Row(f"GRPO step, after, micro-batches of {micro} sequences", times["micro"], "s"),
        Row("micro-batched step / un-split step (time)", [a / b for a, b in zip(times["micro"], times["after"])], "x",
            "per run pair; above 1 = slower"),
        Row("activations kept for backward, un-split (64 sequences)", [acts["after"] / GIB], "GiB",
            "largest over the step's policy forwards"),
        Row(f"activations kept for backward, micro-batches of {micro}", [acts["micro"] / GIB], "GiB",
            f"{fmt(acts['after'] / max(1, acts['micro']))} x less"),
    ]
    n_lm = sum(p.numel() for p in model.lm.parameters())
    sec.notes.append(
        f"The recipe's own `GRPOStage.train_step` (SLT-GRPO, Table 11 adapter r 64 / alpha 128 / dropout 0.05 on q/v, "
        f"AdamW, one update) driven by a real `Trainer` on one batch of {n_in} inputs, {k} samples each, {T} sign "
        f"tokens + a {prompt}-token chat prompt, completions forced to {new} tokens (`min_new_tokens`). The LM is a "
        f"randomly initialised `Qwen3ForCausalLM` of Qwen3-0.6B's width (hidden 1024, 16 heads, 8 KV heads, "
        f"head_dim 128, intermediate 3072, vocabulary 151936, tied) with **{layers} of its 28 layers** "
        f"({n_lm / 1e6:.0f} M parameters, fp32), and {new}-token completions (the paper: up to 64): a full-depth "
        "step takes over an hour on 2 shared CPU cores. The decoder layers' work scales with depth and the "
        "vocabulary-sized LM head's (scored and sampled tokens only) does not, so at full depth the prompt prefill "
        "that sharing removes is a larger share of the step and the step ratio would be larger than here. "
        "Sampling is restricted to the tokenizer's ids (`suppress_tokens`, as item 4), an overhead both ways. "
        "'before' = `SignLanguageLM.generate(share_prefix=False)` (transformers expands the inputs: each prompt "
        "prefilled 8 times); 'after' = the default (each prompt prefilled once, its KV cache repeated for its "
        f"samples); 'micro' = after + `grpo.micro_batch_size={micro}`. After one warm-up step ('after'), the three "
        "variants run interleaved in each timed round, so they share the machine's load; ratios are per round. "
        "Generation time is the `generate` call inside the step. Activations = bytes of the distinct "
        "non-parameter storages autograd saved during one policy forward (`saved_tensors_hooks`), the largest "
        "over the step's forwards: what a micro-batch bounds (peak process RSS does not show it: the allocator "
        "keeps freed memory).")
    return sec
