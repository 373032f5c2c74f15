"""Stage 1: fine-grained similarity (Eqs. 3-6), contrastive loss (Eqs. 7-9), VLPModel (Eqs. 10-11)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rvlf.errors import RvlfError
from rvlf.models.skeleton import SkeletonEncoderConfig
from rvlf.models.vlp import VLPConfig, VLPModel, contrastive_loss, fine_grained_similarity, gather_features

PAD, BOS, EOS, VOCAB = 0, 1, 2, 24


def _naive(f_s, f_t, n_s, n_t, tau):
    """Eqs. 3-6 written out pair by pair, frame by frame, on the real positions only."""
    bs, bt = len(n_s), len(n_t)
    s2t, t2s = torch.zeros(bs, bt, dtype=torch.float64), torch.zeros(bt, bs, dtype=torch.float64)
    for b in range(bs):
        for c in range(bt):
            fs = F.normalize(f_s[b, : n_s[b]].double(), dim=-1)
            ft = F.normalize(f_t[c, : n_t[c]].double(), dim=-1)
            e = fs @ ft.T  # Eq. 3
            rows = []
            for i in range(n_s[b]):
                w = torch.exp(e[i] / tau) / torch.exp(e[i] / tau).sum()  # Eq. 4
                rows.append((w * e[i]).sum())  # Eq. 5
            s2t[b, c] = sum(rows) / n_s[b]  # Eq. 6
            cols = []
            for j in range(n_t[c]):
                w = torch.exp(e[:, j] / tau) / torch.exp(e[:, j] / tau).sum()
                cols.append((w * e[:, j]).sum())
            t2s[c, b] = sum(cols) / n_t[c]
    return s2t, t2s


def _features(n_s, n_t, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    f_s = torch.randn(len(n_s), max(n_s), dim, generator=g)
    f_t = torch.randn(len(n_t), max(n_t), dim, generator=g)
    mask_s = torch.arange(max(n_s))[None] < torch.tensor(n_s)[:, None]
    mask_t = torch.arange(max(n_t))[None] < torch.tensor(n_t)[:, None]
    return f_s, f_t, mask_s, mask_t


def test_similarity_matches_naive_equations():
    n_s, n_t, tau = [5, 3, 7], [4, 6, 2], 0.3
    f_s, f_t, mask_s, mask_t = _features(n_s, n_t)
    z_s2t, z_t2s = fine_grained_similarity(f_s, f_t, mask_s, mask_t, tau)
    ref_s2t, ref_t2s = _naive(f_s, f_t, n_s, n_t, tau)
    assert z_s2t.shape == z_t2s.shape == (3, 3)
    torch.testing.assert_close(z_s2t.double(), ref_s2t, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z_t2s.double(), ref_t2s, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(z_s2t, z_t2s.T)  # the two directions really differ


def test_similarity_is_padding_invariant():
    n_s, n_t = [5, 3], [4, 2]
    f_s, f_t, mask_s, mask_t = _features(n_s, n_t)
    z = fine_grained_similarity(f_s, f_t, mask_s, mask_t, 0.1)
    # extra padded frames / tokens holding garbage
    f_s2 = torch.cat([f_s, 50 * torch.randn(2, 4, 6)], dim=1)
    f_t2 = torch.cat([f_t, -50 * torch.randn(2, 3, 6)], dim=1)
    f_s2[1, 3:] = 99.0
    mask_s2 = F.pad(mask_s, (0, 4), value=False)
    mask_t2 = F.pad(mask_t, (0, 3), value=False)
    z2 = fine_grained_similarity(f_s2, f_t2, mask_s2, mask_t2, 0.1)
    torch.testing.assert_close(z2[0], z[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(z2[1], z[1], atol=1e-6, rtol=1e-6)


def test_similarity_tensor_tau_gets_gradient():
    f_s, f_t, mask_s, mask_t = _features([4, 2], [3, 3])
    log_tau = torch.tensor(math.log(0.2), requires_grad=True)
    z_s2t, z_t2s = fine_grained_similarity(f_s, f_t, mask_s, mask_t, log_tau.exp())
    (z_s2t.sum() + z_t2s.sum()).backward()
    assert log_tau.grad is not None and log_tau.grad != 0


def test_contrastive_loss_by_hand():
    z_s2t = torch.tensor([[0.9, 0.1, -0.2], [0.3, 0.5, 0.0], [0.2, 0.4, 0.1]])
    z_t2s = torch.tensor([[0.7, 0.2, 0.1], [-0.1, 0.6, 0.3], [0.0, 0.2, 0.8]])
    tau_p, beta = 0.5, 0.3

    def infonce(z):
        return -sum(math.log(math.exp(z[b][b] / tau_p) / sum(math.exp(v / tau_p) for v in z[b]))
                    for b in range(3)) / 3

    expect = beta * infonce(z_s2t.tolist()) + (1 - beta) * infonce(z_t2s.tolist())
    assert contrastive_loss(z_s2t, z_t2s, tau_p, beta).item() == pytest.approx(expect, rel=1e-6)
    assert contrastive_loss(z_s2t, z_t2s, tau_p, 1.0).item() == pytest.approx(infonce(z_s2t.tolist()), rel=1e-6)


def _tiny_config(**kw) -> VLPConfig:
    enc = SkeletonEncoderConfig(gcn_channels=[8, 16], d_model=32, num_layers=1, num_heads=4, ff_dim=64,
                                dropout=0.0, max_frames=40)
    base = dict(encoder=enc, d_model=32, text_layers=1, decoder_layers=1, num_heads=4, ff_dim=64,
                contrastive_dim=24, dropout=0.0, max_text_len=16, label_smoothing=0.0)
    return VLPConfig(**{**base, **kw})


def _batch(lengths_s, lengths_t, seed=0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.randn(len(lengths_s), max(lengths_s), 77, 3, generator=g)
    fm = torch.arange(max(lengths_s))[None] < torch.tensor(lengths_s)[:, None]
    kp[~fm] = 0
    ids = torch.full((len(lengths_t), max(lengths_t)), PAD)
    for b, n in enumerate(lengths_t):
        ids[b, : n - 1] = torch.randint(3, VOCAB, (n - 1,), generator=g)
        ids[b, n - 1] = EOS
    return kp, fm, ids, (ids != PAD).long()


def test_paper_defaults_and_checkpoint_keys():
    cfg = VLPConfig()
    assert (cfg.d_model, cfg.text_layers, cfg.decoder_layers, cfg.num_heads, cfg.ff_dim, cfg.contrastive_dim) == (
        512, 3, 3, 8, 2048, 1024)
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS)
    keys = model.state_dict().keys()
    assert any(k.startswith("encoder.gcn.") for k in keys) and any(k.startswith("encoder.transformer.") for k in keys)
    enc_state = {k[len("encoder."):]: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    assert enc_state.keys() == model.encoder.state_dict().keys()  # what stage 2 loads


def test_forward_losses_and_gradients_reach_every_part():
    torch.manual_seed(0)
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS).train()
    out = model(*_batch([12, 7, 9], [5, 3, 6]))
    assert set(out) == {"loss", "loss_con", "loss_slt", "tau"}
    torch.testing.assert_close(out["loss"], out["loss_con"] + out["loss_slt"])
    assert out["tau"].item() == pytest.approx(0.1) and not out["tau"].requires_grad
    out["loss"].backward()
    parts = {
        "gcn": model.encoder.gcn,
        "skeleton transformer": model.encoder.transformer,
        "skeleton projection": model.skeleton_proj,
        "text projection": model.text_proj,
        "text encoder": model.mbart.model.encoder.layers,
        "decoder": model.mbart.model.decoder,
    }
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0, name
    assert model.log_tau.grad is not None and model.log_tau.grad != 0


def test_losses_are_padding_invariant():
    torch.manual_seed(0)
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS).eval()
    kp, fm, ids, att = _batch([9, 6], [4, 3])
    out = model(kp, fm, ids, att)
    more = model(F.pad(kp, (0, 0, 0, 0, 0, 5)), F.pad(fm, (0, 5)), F.pad(ids, (0, 3), value=PAD),
                 F.pad(att, (0, 3)))
    for key in ("loss_con", "loss_slt"):
        torch.testing.assert_close(more[key], out[key], atol=1e-5, rtol=1e-5)


def _well_formed(row: list[int]) -> bool:
    """Tokens, then `</s>`, then only padding; no `<s>`/`<pad>` among the tokens."""
    if EOS not in row:
        return PAD not in row and BOS not in row
    k = row.index(EOS)
    return all(t not in (PAD, BOS) for t in row[:k]) and all(t == PAD for t in row[k + 1:])


def test_overfit_then_beam_search_is_well_formed_and_batch_consistent():
    """A handful of sequences is learnt quickly; beam search then reproduces them, batched or one by one."""
    torch.manual_seed(0)
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS)
    lengths_s, lengths_t = [20, 14, 17, 10, 24, 12], [6, 4, 7, 3, 5, 6]
    kp, fm, ids, att = _batch(lengths_s, lengths_t, seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        model.train()
        loss = model(kp, fm, ids, att)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            model.eval()
            out = model.generate(kp, fm, num_beams=3, max_new_tokens=10)
            if all(out[b, : n].tolist() == ids[b, : n].tolist() for b, n in enumerate(lengths_t)):
                break
    else:
        pytest.fail(f"did not overfit 6 sequences in 300 steps (loss {loss.item():.3f})")
    assert out.dtype == torch.long and out.shape[0] == 6
    assert all(_well_formed(r) for r in out.tolist())
    for b, n in enumerate(lengths_s):
        single = model.generate(kp[b : b + 1, :n], fm[b : b + 1, :n], num_beams=3, max_new_tokens=10)
        width = min(single.shape[1], out.shape[1])
        assert single[0, :width].tolist() == out[b, :width].tolist()
        assert (out[b, width:] == PAD).all() and (single[0, width:] == PAD).all()


def test_untrained_beam_search_is_well_formed():
    torch.manual_seed(3)
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS).eval()
    kp, fm, _, _ = _batch([9, 30, 5], [3, 3, 3])
    for beams in (1, 5):
        out = model.generate(kp, fm, num_beams=beams, max_new_tokens=7)
        assert out.shape[0] == 3 and out.shape[1] <= 7
        assert all(_well_formed(r) for r in out.tolist())
    assert model.generate(kp, fm, num_beams=2, max_new_tokens=100).shape[1] <= 15  # max_text_len - 1


def test_too_long_text_is_one_line_error():
    model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS)
    kp, fm, ids, att = _batch([5], [20])
    with pytest.raises(RvlfError, match="max_text_len 16"):
        model(kp, fm, ids, att)


def _distributed_worker(rank: int, world: int, tmp: str) -> None:
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS).eval()
        kp, fm, ids, att = _batch([12, 7, 9, 5], [5, 3, 6, 4])
        half = slice(2 * rank, 2 * rank + 2)
        n_s, n_t = int(fm[half].sum(1).max()), int(att[half].sum(1).max())  # each rank pads to its own length
        out = model(kp[half, :n_s], fm[half, :n_s], ids[half, :n_t], att[half, :n_t])
        out["loss_con"].backward()
        f, m = gather_features(torch.randn(2, 3 + rank, 4, requires_grad=True), torch.ones(2, 3 + rank, dtype=torch.bool))
        proj_grad = next(model.skeleton_proj.parameters()).grad.flatten()[:8].tolist()
        result = [out["loss_con"].item(), model.log_tau.grad.item(), list(f.shape), m.sum().item(), proj_grad]
        (Path(tmp) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_negatives_come_from_the_global_batch(tmp_path):
    """Two processes with half a batch each see the same contrastive loss as one process with all of it."""
    import json

    import torch.multiprocessing as mp

    torch.manual_seed(0)
    full = VLPModel(_tiny_config(), VOCAB, PAD, BOS, EOS).eval()
    loss_full = full(*_batch([12, 7, 9, 5], [5, 3, 6, 4]))["loss_con"]
    expect = loss_full.item()
    loss_full.backward()
    expect_grad = next(full.skeleton_proj.parameters()).grad.flatten()[:8]
    mp.start_processes(_distributed_worker, args=(2, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    grads = []
    for rank in (0, 1):
        loss, tau_grad, shape, real, proj_grad = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert loss == pytest.approx(expect, rel=1e-5)
        assert tau_grad != 0
        assert shape == [4, 4, 4] and real == 2 * 3 + 2 * 4
        grads.append(torch.tensor(proj_grad))
    # what DDP applies (the mean over processes) is the gradient of the global batch on one process
    assert torch.allclose((grads[0] + grads[1]) / 2, expect_grad, rtol=1e-4, atol=1e-6)
