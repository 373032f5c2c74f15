"""SignLanguageLM on a tiny random Qwen3 (Eq. 14): prompt, loss masking, gradients, decoding, GRPO log-probs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from rvlf.errors import RvlfError
from rvlf.models.fusion import FusionConfig, SignFusion
from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
from rvlf.models.slt_lm import (
    INSTRUCTION,
    SignLanguageLM,
    add_lora,
    build_prompt,
    build_tiny_qwen3,
    load_causal_lm,
    merge_lora,
    tiny_chat_tokenizer,
)
from rvlf.text.metrics import corpus_scores

WORDS = "the cat dog sat ran on under mat big small red house tree we you they see like go home today rain sun".split()
N_TRAIN, T, D_DINO = 16, 8, 16
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft


def _texts(n: int = N_TRAIN) -> list[str]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        k = int(torch.randint(3, 8, (1,), generator=g))
        out.append(" ".join(WORDS[i] for i in torch.randint(len(WORDS), (k,), generator=g).tolist()))
    return out


TEXTS = _texts()


def _inputs(n: int = N_TRAIN, seed: int = 1):
    """Keypoints, frame masks with 4..8 real frames (zeros after), DINOv2 features."""
    g = torch.Generator().manual_seed(seed)
    kp = torch.randn(n, T, 77, 3, generator=g)
    fm = torch.arange(T)[None] < (4 + torch.arange(n) % 5)[:, None]
    dino = torch.randn(n, T, 3, D_DINO, generator=g)
    return kp * fm[..., None, None], fm, dino * fm[..., None, None]


@pytest.fixture(scope="module")
def tok():
    return tiny_chat_tokenizer(TEXTS, "en")


def _model(tok, *, seed: int = 0, dropout: float = 0.0, instruction: str = INSTRUCTION, **fusion_kw) -> SignLanguageLM:
    torch.manual_seed(seed)
    enc = SkeletonEncoder(
        SkeletonEncoderConfig(gcn_channels=[8, 16], d_model=32, num_layers=1, num_heads=2, ff_dim=64, dropout=0.0)
    )
    lm = add_lora(build_tiny_qwen3(tok), r=16, alpha=32, dropout=dropout)
    fusion = SignFusion(FusionConfig(dino_dim=D_DINO, sign_dim=32, **fusion_kw), lm.config.hidden_size)
    return SignLanguageLM(enc, fusion, lm, tok, instruction=instruction, max_new_tokens=12)


@pytest.fixture(scope="module")
def trained(tok) -> SignLanguageLM:
    """The tiny model overfitted on the 16 training samples (LoRA + projector, encoder frozen)."""
    model = _model(tok)
    kp, fm, dino = _inputs()
    groups = model.trainable_parameters()
    opt = torch.optim.AdamW(
        [{"params": groups["lora"], "lr": 3e-3}, {"params": groups["projector"], "lr": 3e-3}], weight_decay=0.0
    )
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(250):
        idx = torch.randperm(N_TRAIN, generator=g)[:8]
        loss = model(kp[idx], fm[idx], dino[idx], [TEXTS[i] for i in idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _reference_logits(model: SignLanguageLM, kp, fm, dino, tokens: list[int], b: int) -> torch.Tensor:
    """Unpadded, unbatched logits of sample `b`: [prefix][its real sign frames][suffix][tokens]."""
    emb = model.lm.get_input_embeddings()
    signs, mask = model.encode_signs(kp[b : b + 1], fm[b : b + 1], dino[b : b + 1])
    p = model.prompt
    seq = torch.cat(
        [emb(torch.tensor([p.prefix])), signs[mask][None], emb(torch.tensor([p.suffix])), emb(torch.tensor([tokens]))],
        dim=1,
    )
    return model.lm(inputs_embeds=seq).logits[0]


def _target(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]


# ---- prompt --------------------------------------------------------------------------------------
def test_prompt_is_chat_template_split_at_the_user_message(tok):
    p = build_prompt(tok)
    word = "cat"
    messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": word}]
    full = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert INSTRUCTION in full
    full_ids = tok(full, add_special_tokens=False)["input_ids"]
    assert p.prefix + tok(word, add_special_tokens=False)["input_ids"] + p.suffix == full_ids
    assert tok.unk_token_id not in p.prefix + p.suffix
    assert p.stop_ids == [tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id]


def test_prompt_disables_thinking(tok):
    thinking = copy.deepcopy(tok)
    thinking.chat_template = tok.chat_template + "{%- if enable_thinking == false %}{{ 'sun' }}{%- endif %}"
    assert build_prompt(thinking).suffix == build_prompt(tok).suffix + tok("sun", add_special_tokens=False)["input_ids"]


def test_prompt_without_chat_template_is_plain_instruction(tok):
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    p = build_prompt(plain, "we see the sun")
    assert p.prefix == [tok.bos_token_id] + tok("we see the sun\n", add_special_tokens=False)["input_ids"]
    assert p.suffix == []


# ---- SFT loss (Eq. 14) -----------------------------------------------------------------------------
def test_only_target_tokens_carry_loss(tok):
    model = _model(tok).eval()
    kp, fm, dino = _inputs(3)
    texts = ["the cat sat on the mat", "we go home", "big red house today rain"]
    with torch.no_grad():
        out = model.token_outputs(kp, fm, dino, texts)
        expected_losses = []
        for b, text in enumerate(texts):
            target = _target(tok, text)
            row = out.labels[b]
            assert row[row != -100].tolist() == target  # exactly the target + <|im_end|>, at the right edge
            assert (row[: len(row) - len(target)] == -100).all()
            logits = _reference_logits(model, kp, fm, dino, target, b)[-len(target) - 1 : -1]
            torch.testing.assert_close(out.logits[b, -len(target) :], logits, atol=1e-4, rtol=1e-4)
            expected_losses.append(F.cross_entropy(logits, torch.tensor(target), reduction="none"))
    torch.testing.assert_close(out.loss, torch.cat(expected_losses).mean(), atol=1e-5, rtol=1e-5)

    # another instruction changes the context but not which tokens are scored
    other = _model(tok, instruction="we like the sun").eval()
    with torch.no_grad():
        out2 = other.token_outputs(kp, fm, dino, texts)
    assert torch.equal(out2.labels, out.labels)
    assert not torch.allclose(out2.loss, out.loss)


def test_only_lora_and_projector_train_base_lm_untouched(tok):
    model = _model(tok, dropout=0.3).train()
    kp, fm, dino = _inputs(4)
    groups = model.trainable_parameters()
    lm_trainable = {n for n, p in model.lm.named_parameters() if p.requires_grad}
    assert lm_trainable and all("lora_" in n for n in lm_trainable)
    assert groups["encoder"] == [] and len(groups["projector"]) == len(list(model.fusion.parameters()))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(
        [{"params": groups["lora"], "lr": 2e-4}, {"params": groups["projector"], "lr": 2e-5}], weight_decay=0.0
    )
    model(kp, fm, dino, TEXTS[:4]).backward()
    opt.step()
    for n, p in model.named_parameters():
        trainable = n.startswith("fusion.") or "lora_" in n
        assert (p.grad is not None) == trainable, n
        if not trainable:
            assert torch.equal(p, before[n]), n  # bit-identical base LM and frozen encoder
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any("lora_B" in n for n in changed) and any(n.startswith("fusion.") for n in changed)
    assert not model.encoder.training  # a frozen encoder gives deterministic features

    model.freeze_encoder(False)
    model.train()
    assert model.encoder.training
    assert len(model.trainable_parameters()["encoder"]) == len(list(model.encoder.parameters()))
    opt = torch.optim.AdamW([p for group in model.trainable_parameters().values() for p in group], lr=1e-3)
    opt.zero_grad()
    model(kp, fm, dino, TEXTS[:4]).backward()
    opt.step()
    assert any(not torch.equal(p, before[f"encoder.{n}"]) for n, p in model.encoder.named_parameters())
    base = [n for n, _ in model.lm.named_parameters() if "lora_" not in n]
    assert all(torch.equal(dict(model.lm.named_parameters())[n], before[f"lm.{n}"]) for n in base)


@pytest.mark.parametrize(
    "use_face, use_hand, sees",
    [(True, True, {0, 1, 2}), (True, False, {0}), (False, True, {1, 2}), (False, False, set())],
    ids=["full", "face-only", "hand-only", "no-dino"],
)
def test_fusion_ablations_change_what_the_lm_sees(tok, use_face, use_hand, sees):
    model = _model(tok, use_face=use_face, use_hand=use_hand).eval()
    kp, fm, dino = _inputs(2)
    with torch.no_grad():
        base, _ = model.encode_signs(kp, fm, dino)
        for crop in range(3):
            changed = dino.clone()
            changed[:, :, crop] += 1.0
            assert (not torch.allclose(model.encode_signs(kp, fm, changed)[0], base)) == (crop in sees), crop
        no_dino, _ = model.encode_signs(kp, fm, None)
    assert torch.allclose(no_dino, base) == (not sees)


# ---- decoding -----------------------------------------------------------------------------------------
def test_overfit_16_samples_reaches_bleu4_90(trained):
    kp, fm, dino = _inputs()
    out = trained.generate(kp, fm, dino, num_beams=5)
    assert corpus_scores(out.texts, TEXTS, "en")["bleu4"] >= 90


def test_batched_beam_search_equals_one_at_a_time(trained):
    kp, fm, dino = _inputs()
    idx = [0, 3, 6, 9, 14]  # 4..8 real frames: different prompt lengths, left-padded
    batched = trained.generate(kp[idx], fm[idx], dino[idx], num_beams=5)
    for row, i in enumerate(idx):
        n = int(fm[i].sum())
        single = trained.generate(kp[i : i + 1, :n], fm[i : i + 1, :n], dino[i : i + 1, :n], num_beams=5)
        assert batched.texts[row] == single.texts[0]
        ids = batched.completion_ids[row][batched.completion_mask[row]]
        assert ids.tolist() == single.completion_ids[0][single.completion_mask[0]].tolist()
    assert batched.texts == [TEXTS[i] for i in idx]


def test_sampling_groups_and_completion_logprobs(trained, tok):
    kp, fm, dino = _inputs()
    idx, k = [1, 5, 12], 4
    kp, fm, dino = kp[idx], fm[idx], dino[idx]
    stop = trained.prompt.stop_ids

    # near-greedy sampling: group i holds k copies of input i's translation
    cold = trained.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=k, temperature=1e-3)
    assert cold.texts == [TEXTS[i] for i in idx for _ in range(k)]

    torch.manual_seed(0)
    gen = trained.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=k, temperature=1.0)
    n, width = gen.completion_ids.shape
    assert n == len(idx) * k and gen.completion_mask.dtype == torch.bool
    for ids, mask in zip(gen.completion_ids, gen.completion_mask):
        length = int(mask.sum())
        assert mask[:length].all() and not mask[length:].any()
        assert ids[length - 1] in stop or length == width
        assert (ids[length:] == trained.pad_id).all()

    for temperature in (1.0, 0.5):
        with torch.no_grad():
            logps = trained.completion_logprobs(
                kp, fm, dino, gen.completion_ids, gen.completion_mask, repeats=k, temperature=temperature
            )
            assert logps.shape == (n, width)
            for r in range(n):
                length = int(gen.completion_mask[r].sum())
                tokens = gen.completion_ids[r, :length].tolist()
                logits = _reference_logits(trained, kp, fm, dino, tokens, r // k)[-length - 1 : -1]
                expected = (logits / temperature).log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]
                torch.testing.assert_close(logps[r, :length], expected, atol=1e-4, rtol=1e-4)
                assert (logps[r, length:] == 0).all()


# ---- checkpoints, GRPO set-up, loading --------------------------------------------------------------
def test_checkpoint_holds_adapter_fusion_encoder_and_round_trips(trained, tok):
    sd = trained.state_dict_for_checkpoint()
    assert {k.split(".")[0] for k in sd} == {"lora", "fusion", "encoder"}
    assert all("lora_" in k for k in sd if k.startswith("lora."))  # no frozen base LM weight
    fresh = _model(tok, seed=1)  # same base LM (its own seed), other adapter / fusion / encoder init
    kp, fm, dino = _inputs(4)
    fresh.load_checkpoint_state(sd)
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(kp, fm, dino, TEXTS[:4]), trained(kp, fm, dino, TEXTS[:4]))
    with pytest.raises(RvlfError, match="LoRA"):
        fresh.load_checkpoint_state({k: v for k, v in sd.items() if "layers.0" not in k})
    with pytest.raises(RvlfError, match="fusion"):
        fresh.load_checkpoint_state({**sd, "fusion.extra.weight": torch.zeros(1)})
    with pytest.raises(RvlfError, match="no part"):
        fresh.load_checkpoint_state({**sd, "optimizer.step": torch.zeros(1)})


def test_merge_then_new_adapter_reference_is_merged_model(trained):
    model = copy.deepcopy(trained)
    kp, fm, dino = _inputs(3)
    with torch.no_grad():
        sft_loss = model(kp, fm, dino, TEXTS[:3])
    model.lm = add_lora(merge_lora(model.lm), r=64, alpha=128, dropout=0.05)
    assert model.lm.peft_config["default"].r == 64
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(kp, fm, dino, TEXTS[:3]), sft_loss, atol=1e-5, rtol=1e-5)
    opt = torch.optim.AdamW(model.trainable_parameters()["lora"], lr=1e-2)
    model(kp, fm, dino, TEXTS[:3]).backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(model(kp, fm, dino, TEXTS[:3]), sft_loss)
        with model.adapter_disabled():
            torch.testing.assert_close(model(kp, fm, dino, TEXTS[:3]), sft_loss, atol=1e-5, rtol=1e-5)
    with pytest.raises(RvlfError, match="no LoRA"):
        merge_lora(model.lm.get_base_model())


def test_load_causal_lm_from_local_folder(tok, tmp_path):
    lm = build_tiny_qwen3(tok, seed=3)
    lm.save_pretrained(tmp_path / "lm")
    loaded = load_causal_lm(str(tmp_path / "lm")).eval()
    ids = torch.tensor([tok("the cat sat", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, lm.eval()(ids).logits)
    with pytest.raises(RvlfError, match="cannot load causal LM"):
        load_causal_lm(str(tmp_path / "missing"))


def test_encoder_output_cache_gives_the_uncached_features_and_encodes_each_video_once(tok):
    model = _model(tok).eval()
    kp, fm, dino = _inputs(6)
    plain, plain_mask = model.encode_signs(kp, fm, dino)
    calls = []
    model.encoder.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    model.cache_encoder_outputs(True)
    # a shuffled, differently padded batch hits the same per-video entries
    order = [3, 0, 5]
    first, _ = model.encode_signs(kp[order], fm[order], dino[order])
    both, both_mask = model.encode_signs(kp, fm, dino)
    assert calls == [3, 3]  # the second batch only encodes the three videos not seen yet
    assert torch.equal(both_mask, plain_mask)
    torch.testing.assert_close(both, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first, plain[order], atol=1e-5, rtol=1e-5)
    model.encode_signs(kp, fm, dino)
    assert calls == [3, 3]
    model.freeze_encoder(False)  # a trainable encoder is never cached
    model.encode_signs(kp, fm, dino)
    assert calls == [3, 3, 6]


# ---- the stop set (issue 15) --------------------------------------------------------------------------
EOT = "<|endoftext|>"


def _qwen_like(bias: float):
    """A tiny Qwen3 laid out like Qwen3's own files: tokenizer eos `<|im_end|>`, pad `<|endoftext|>`,
    `generation_config.eos_token_id = [<|im_end|>, <|endoftext|>]`, and an LM head biased so that
    `<|endoftext|>` is the most likely token everywhere."""
    from rvlf.models.slt_lm import CHAT_TEMPLATE, IM_END, IM_START
    from rvlf.text.tokenizer import build_corpus_tokenizer

    tok = build_corpus_tokenizer(TEXTS + [INSTRUCTION, "system user assistant"], "en",
                                 extra_special_tokens=[IM_START, IM_END, EOT], chat_template=CHAT_TEMPLATE)
    tok.eos_token, tok.pad_token = IM_END, EOT
    im_end, eot = tok.convert_tokens_to_ids(IM_END), tok.convert_tokens_to_ids(EOT)
    lm = build_tiny_qwen3(tok)
    assert lm.generation_config.eos_token_id == [im_end]
    lm.generation_config.eos_token_id = [im_end, eot]
    head = torch.nn.Linear(lm.config.hidden_size, lm.config.vocab_size, bias=True)
    head.weight = lm.lm_head.weight
    with torch.no_grad():
        head.bias.zero_()
        head.bias[eot] = bias
    lm.lm_head = head
    torch.manual_seed(0)
    enc = SkeletonEncoder(SkeletonEncoderConfig(gcn_channels=[8, 16], d_model=32, num_layers=1, num_heads=2,
                                                ff_dim=64, dropout=0.0))
    fusion = SignFusion(FusionConfig(dino_dim=D_DINO, sign_dim=32), lm.config.hidden_size)
    return SignLanguageLM(enc, fusion, add_lora(lm, dropout=0.0), tok, max_new_tokens=12).eval(), im_end, eot


def test_generation_stops_at_every_eos_of_the_generation_config():
    model, im_end, eot = _qwen_like(bias=6.0)
    assert model.prompt.stop_ids == [im_end, eot]  # <|im_end|> first: it closes every SFT target
    kp, fm, dino = _inputs(3)
    with torch.no_grad():
        first = model.completion_logprobs(kp, fm, dino, torch.full((3, 1), eot), torch.ones(3, 1, dtype=torch.bool),
                                          repeats=1)
        logits = _reference_logits(model, kp, fm, dino, [eot], 0)[-2]  # what predicts the first token
    assert int(logits.argmax()) == eot and (first[:, 0] > -1.0).all()
    for kw in (dict(num_beams=1), dict(num_beams=5), dict(num_beams=1, do_sample=True, num_return_sequences=4)):
        torch.manual_seed(0)
        out = model.generate(kp, fm, dino, **kw)
        lengths = out.completion_mask.sum(1)
        assert out.completion_ids.shape[1] < 12, kw  # generation ended, it did not run on to max_new_tokens
        for ids, mask, n in zip(out.completion_ids, out.completion_mask, lengths.tolist()):
            assert mask[:n].all() and not mask[n:].any()
            assert int(ids[n - 1]) in (im_end, eot), kw  # each completion ends at its first stop token
            assert not torch.isin(ids[: n - 1], torch.tensor([im_end, eot])).any()
        if not kw.get("do_sample"):
            assert (lengths == 1).all() and out.texts == ["", "", ""], kw

    # sampled completions that stop at <|endoftext|> mid-way; the log-prob pass scores nothing after it
    model, im_end, eot = _qwen_like(bias=2.0)
    torch.manual_seed(0)
    out = model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=8)
    ends = [int(ids[n - 1]) for ids, n in zip(out.completion_ids, out.completion_mask.sum(1).tolist())]
    assert eot in ends and any(n > 1 for n in out.completion_mask.sum(1).tolist())
    word = model.tokenizer.convert_tokens_to_ids("cat")
    ids = torch.tensor([[word, eot, word, word, im_end], [word, word, im_end, eot, word]])
    with torch.no_grad():
        logps = model.completion_logprobs(kp[:2], fm[:2], dino[:2], ids, torch.ones_like(ids, dtype=torch.bool), 1)
    assert (logps[0, :2] < 0).all() and (logps[0, 2:] == 0).all()
    assert (logps[1, :3] < 0).all() and (logps[1, 3:] == 0).all()


# ---- group prefix sharing (issue 15) ---------------------------------------------------------------------
@pytest.mark.parametrize("settings", [dict(temperature=1.0), dict(temperature=0.5, top_k=5),
                                      dict(temperature=1.3, top_p=0.8)], ids=["t1", "t0.5-topk5", "t1.3-topp0.8"])
def test_prefix_shared_sampling_draws_the_same_texts_as_plain_sampling(tok, settings):
    model = _model(tok).eval()
    kp, fm, dino = _inputs(5)  # 4..8 real frames: left-padded prompts of different lengths
    for seed in range(3):
        torch.manual_seed(seed)
        shared = model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=4, **settings)
        torch.manual_seed(seed)
        plain = model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=4, share_prefix=False,
                               **settings)
        assert shared.texts == plain.texts
        assert torch.equal(shared.completion_ids, plain.completion_ids)
        assert torch.equal(shared.completion_mask, plain.completion_mask)
    assert len(set(shared.texts)) > 5  # real sampling, not one greedy text per input


def test_each_prompt_is_prefilled_once_for_all_its_samples(tok):
    model = _model(tok).eval()
    kp, fm, dino = _inputs(3)
    widths = []
    inner = model.lm.get_base_model().model  # the Qwen3Model under the LoRA and the LM head

    def record(mod, args, kw):
        x = kw.get("inputs_embeds") if kw.get("inputs_embeds") is not None else kw["input_ids"]
        widths.append(tuple(x.shape[:2]))

    hook = inner.register_forward_pre_hook(record, with_kwargs=True)
    try:
        model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=8)
        shared, widths[:] = list(widths), []
        model.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=8, share_prefix=False)
        plain = list(widths)
    finally:
        hook.remove()
    prompt = shared[0][1] + 1
    assert shared[0] == (3, prompt - 1)  # the 3 prompts once, all positions but the last
    assert all(w == (24, 1) for w in shared[1:])  # then one position at a time for the 24 samples
    assert plain[0] == (24, prompt)  # before: 8 copies of every prompt prefilled
