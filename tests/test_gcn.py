"""Grouped spatial-temporal GCN: adjacency, shapes, padding, weight sharing, temporal mixing."""

from __future__ import annotations

import pytest
import torch

from rvlf.data.keypoints import PART_EDGES, PARTS
from rvlf.models.gcn import GroupedGCN, part_adjacency


def _gcn(**kw) -> GroupedGCN:
    torch.manual_seed(0)
    return GroupedGCN(**{"channels": (8, 16), "out_dim": 32, "dropout": 0.0, **kw})


def test_part_adjacency_is_identity_and_symmetric_normalised_bones():
    adj = part_adjacency(3, [(0, 1), (1, 2)])  # a chain: degrees 1, 2, 1
    assert torch.equal(adj[0], torch.eye(3))
    expect = torch.tensor([[0, 2**-0.5, 0], [2**-0.5, 0, 2**-0.5], [0, 2**-0.5, 0]])
    torch.testing.assert_close(adj[1], expect)
    for part, edges in PART_EDGES.items():
        a = part_adjacency(PARTS[part].stop - PARTS[part].start, edges)[1]
        assert torch.equal(a, a.T) and (a > 0).sum() == 2 * len(set(edges))


def test_shape_and_zero_at_padded_frames():
    x = torch.randn(2, 12, 77, 3)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 7:] = False
    out = _gcn()(x, mask)
    assert out.shape == (2, 12, 32)
    assert out[1, 7:].abs().max() == 0 and out[1, :7].abs().min() > 0


def test_padding_never_reaches_real_frames():
    """Same real frames, more padding (holding garbage): identical outputs, in training mode too."""
    gcn = _gcn().train()
    real = torch.randn(1, 9, 77, 3)
    padded = torch.cat([real, 100 * torch.randn(1, 6, 77, 3)], dim=1)
    mask = torch.arange(15)[None] < 9
    torch.testing.assert_close(gcn(padded, mask)[:, :9], gcn(real, torch.ones(1, 9, dtype=torch.bool)))


def test_temporal_convs_mix_neighbouring_frames_only_within_receptive_field():
    gcn = _gcn(temporal_kernel=3).eval()  # two blocks of kernel 3: radius 2
    x = torch.randn(1, 10, 77, 3)
    mask = torch.ones(1, 10, dtype=torch.bool)
    y = x.clone()
    y[0, 5] += 1.0
    diff = (gcn(x, mask) - gcn(y, mask)).abs().amax(-1)[0]
    assert (diff[3:8] > 1e-6).all()
    assert (diff[:3] == 0).all() and (diff[8:] == 0).all()


def test_hands_share_weights_when_configured():
    shared, separate = _gcn(share_hands=True), _gcn(share_hands=False)
    assert shared.group("right_hand") is shared.group("left_hand")
    assert separate.group("right_hand") is not separate.group("left_hand")
    n_hand = sum(p.numel() for p in separate.group("right_hand").parameters())
    assert sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in shared.parameters()) == n_hand


def test_every_group_and_learned_adjacency_get_gradient():
    gcn = _gcn().train()
    x = torch.randn(2, 6, 77, 3)
    gcn(x, torch.ones(2, 6, dtype=torch.bool)).pow(2).sum().backward()
    for name, p in gcn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_input_norm_uses_real_frames_only_and_standardises():
    from rvlf.models.gcn import MaskedInputNorm

    torch.manual_seed(0)
    norm = MaskedInputNorm(num_nodes=4, channels=3, momentum=1.0)
    x = torch.randn(2, 6, 4, 3) * 5 + 2
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    x_garbage = x.clone()
    x_garbage[~mask] = 1e6  # padding content must not matter
    y = norm(x_garbage, mask)
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))
    real = y[mask]
    assert torch.allclose(real.mean(0), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(real.std(0, unbiased=False), torch.ones(4, 3), atol=1e-3)
    norm.eval()  # running statistics (momentum 1: those of the last batch) give the same result
    assert torch.allclose(norm(x, mask)[mask], real, atol=1e-5)


def test_pack_frames_lays_videos_end_to_end_with_gaps():
    from rvlf.models.gcn import pack_frames

    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.bool)
    src, dst, n = pack_frames(mask, gap=2)
    # video 0: frames 0-1 -> rows 0-1, gap rows 2-3; video 1: empty, gap rows 4-5; video 2: frames
    # 0-2 (frame 1 masked inside its span, kept as a masked frame) -> rows 6-8, gap rows 9-10
    assert n == 11
    assert src.tolist() == [0, 1, 8, 9, 10] and dst.tolist() == [0, 1, 6, 7, 8]


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_packed_gcn_equals_the_padded_computation(kernel):
    """Packing the real frames is an implementation detail: outputs and every gradient equal the
    GCN run on the padded batch, with uneven lengths, a masked frame inside a video, an empty video
    and padding holding garbage."""
    gcn = _gcn(temporal_kernel=kernel).train()
    torch.manual_seed(1)
    x = torch.randn(4, 11, 77, 3)
    mask = torch.zeros(4, 11, dtype=torch.bool)
    mask[0, :11], mask[1, :4], mask[3, :7] = True, True, True
    mask[3, 2] = False  # a frame without a signer inside the video
    x[~mask] = 1e3 * torch.randn(int((~mask).sum()), 77, 3)
    got = gcn(x, mask)
    grads = torch.autograd.grad(got.pow(2).sum(), list(gcn.parameters()))
    want = gcn(x, mask, pack=False)
    ref_grads = torch.autograd.grad(want.pow(2).sum(), list(gcn.parameters()))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for (name, _), g, r in zip(gcn.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5, msg=name)
    assert got[2].abs().max() == 0 and got[3, 2].abs().max() == 0
    assert torch.equal(gcn(x, mask.float()), got)  # a 0/1 float mask means the same


def test_gcn_of_an_all_empty_batch_is_zero():
    out = _gcn(temporal_kernel=1)(torch.randn(2, 5, 77, 3), torch.zeros(2, 5, dtype=torch.bool))
    assert out.shape == (2, 5, 32) and out.abs().max() == 0
