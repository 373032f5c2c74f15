"""3. Stage 1 (VLP) training step at the paper's shape: samples/s and model FLOP utilisation. See
benchmarks/README.md."""

from __future__ import annotations

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
    sec.notes.append(f"`VLPModel(VLPConfig(), vocab_size={V}, pad_id=1, bos_id=0, eos_id=2)`, {n_params / 1e6:.1f} M "
                     f"parameters, dropout on (train mode), SGD with momentum; random keypoints `[{B},{T},77,3]` and "
                     f"{L}-token targets. The step is forward (skeleton encoder, text encoder, fine-grained "
                     "similarity, mBART decoder over the 6201-word vocabulary), backward and the optimizer update.")
    return sec
