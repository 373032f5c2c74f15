"""5. GRPO's sampling: one batched `generate(num_return_sequences=8)` against one sample at a time. See
benchmarks/README.md."""

from __future__ import annotations

import statistics

from benchmarks.harness import WORDS, Row, Section, Sizes, fmt, timed


def run(sizes: Sizes, ctx: dict) -> Section:
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
    sec.rows.append(Row(f"batched: {n_in} inputs x {k} samples in one call", sb, "s", f"{fmt(tokens / statistics.median(sb))} tokens/s"))
    sec.rows.append(Row(f"one at a time: {n_in * k} calls of 1 sample", ss, "s", f"{fmt(tokens / statistics.median(ss))} tokens/s"))
    sec.rows.append(Row("speed-up (one at a time / batched)", [a / b for a, b in zip(ss, sb)], "x", "per run pair"))
    n_lm = sum(p.numel() for p in lm.parameters())
    sec.notes.append(
        f"`SignLanguageLM.generate(..., do_sample=True, num_return_sequences=8)` (KV cache on) on the demo-sized LM: "
        f"`build_tiny_qwen3(tok, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256)` "
        f"+ a GRPO LoRA (r 64) = {n_lm / 1e6:.2f} M parameters, vocabulary {len(tok)}; {T} sign frames per input "
        f"(a tiny 32-wide skeleton encoder), every completion forced to {new} tokens (`min_new_tokens`). "
        "The batched call prefills each of the 8 prompts once, shares its KV cache with its 8 samples (item 5b) "
        "and decodes the 64 sequences together; the other way runs 64 separate prefills and decodes of a single "
        "sequence. With a model this small the one-at-a-time cost is "
        "dominated by per-call and per-token Python overhead, which batching amortises.")
    return sec
