"""4. SFT and GRPO steps of `SignLanguageLM` over a Qwen3-0.6B-shaped LM with the LoRA of Tables 10/11. See
benchmarks/README.md."""

from __future__ import annotations

import statistics
import time

from benchmarks.harness import (GIB, WORDS, PeakRSS, Row, Section, Sizes, count_flops, qwen06b_sign_lm, timed,
                                training_step)


def _qwen_sign_lm(sizes: Sizes, lora: dict, tokenizer_texts: list[str]):
    layers = 4 if sizes.quick or sizes.llm_reduced else 28
    return qwen06b_sign_lm(layers, lora, tokenizer_texts), layers


def _sign_inputs(n: int, T: int):
    import torch

    g = torch.Generator().manual_seed(1)
    return torch.randn(n, T, 77, 3, generator=g), torch.ones(n, T, dtype=torch.bool), torch.randn(n, T, 3, 768, generator=g)


def run(sizes: Sizes, ctx: dict, parts: tuple[str, ...] = ("sft", "grpo")) -> Section:
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
