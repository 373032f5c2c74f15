"""3. Stage 1 (VLP) training step at the paper's shape: samples/s and model FLOP utilisation. See
benchmarks/README.md."""

from __future__ import annotations

import time

from benchmarks.harness import Row, Section, Sizes, count_flops, rates, timed, training_step


def run(sizes: Sizes, ctx: dict) -> Section:
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
    # the grouped GCN on a batch of uneven lengths: real frames packed end to end (what the model
    # runs) against the padded batch (every padded frame computed), alternating, ratio per run pair
    gcn = model.encoder.gcn
    lengths = torch.linspace(T // 3, T, B).round().long()  # padded to ~1.5x the mean length
    mask = torch.arange(T)[None, :] < lengths[:, None]
    padded_s, packed_s = [], []

    def gcn_step(pack: bool, out: list[float]) -> None:
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        gcn(kp, mask, pack=pack).pow(2).mean().backward()
        out.append(time.perf_counter() - t0)

    for _ in range(sizes.warmup + sizes.runs):
        gcn_step(False, padded_s)
        gcn_step(True, packed_s)
    padded_s, packed_s = padded_s[sizes.warmup:], packed_s[sizes.warmup:]
    pad_ratio = T * B / float(lengths.sum())
    sec.rows.append(Row("GCN forward + backward, padded / packed", [a / b for a, b in zip(padded_s, packed_s)], "x",
                        f"batch {B} padded to {pad_ratio:.2f}x its mean length; per run pair"))
    sec.notes.append(f"`VLPModel(VLPConfig(), vocab_size={V}, pad_id=1, bos_id=0, eos_id=2)`, {n_params / 1e6:.1f} M "
                     f"parameters, dropout on (train mode), SGD with momentum; random keypoints `[{B},{T},77,3]` and "
                     f"{L}-token targets. The step is forward (skeleton encoder, text encoder, fine-grained "
                     "similarity, mBART decoder over the 6201-word vocabulary), backward and the optimizer update.")
    return sec
