"""The demo's base LM (`rvlf.synth.lm`): text of the demo language only, never a dev/test sentence,
saved as a folder that SFT loads as it loads Qwen3 from disk."""

from __future__ import annotations

import json

import pytest
import torch

from rvlf.config import LLMConfig
from rvlf.errors import RvlfError
from rvlf.models.slt_lm import tiny_chat_tokenizer
from rvlf.synth import grammar
from rvlf.synth.corpus import generate_corpus
from rvlf.synth.lm import LMPretrainConfig, demo_language_text, is_finished, lm_stamp, pretrain_demo_lm
from rvlf.train.sign_lm import build_language_model

SHAPE = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = generate_corpus(tmp_path_factory.mktemp("lmcorpus"), seed=3, n_train=48, n_dev=12, n_test=12, dino=None,
                          progress=False)
    return out / "manifest.jsonl"


def _rows(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def test_text_never_holds_a_dev_or_test_sentence(tmp_path, monkeypatch):
    """A grammar that only knows three sentence frames, one of them a test sentence: the text has the
    other two, in their reference phrasings, and never the test one."""
    import numpy as np

    rng = np.random.default_rng(7)
    frames, seen = [], set()
    while len(frames) < 3:
        f = grammar.sample_frame(rng)
        if grammar.realise(f).gloss not in seen:
            seen.add(grammar.realise(f).gloss)
            frames.append(f)
    sentences = [grammar.realise(f) for f in frames]
    rows = [{"id": f"{split}-0", "split": split, "text": s.phrasings[0], "gloss": " ".join(s.gloss)}
            for split, s in zip(("train", "dev", "test"), sentences)]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cycle = iter(range(10**6))
    monkeypatch.setattr(grammar, "sample_frame", lambda _rng: frames[next(cycle) % 3])
    texts = demo_language_text(manifest, 300, seed=0)
    assert set(texts) <= set(sentences[0].phrasings)  # dev and test sequences are skipped
    assert len(set(texts)) > 1  # phrased as references are: drawn, not always the likeliest


def test_the_text_is_the_grammar_s_and_depends_on_the_seed_only(corpus):
    rows = _rows(corpus)
    held_gloss = {r["gloss"] for r in rows if r["split"] != "train"}
    texts = demo_language_text(corpus, 3000, seed=0)
    assert len(set(texts)) > 2000 and not {r["text"] for r in rows if r["split"] != "train"} & set(texts)
    assert demo_language_text(corpus, 3000, seed=0) == texts and demo_language_text(corpus, 50, seed=1) != texts[:50]
    # every text is a phrasing of a gloss sequence the grammar makes, never a held-out one
    import numpy as np

    rng = np.random.default_rng([0, 5])
    drawn = []
    while len(drawn) < 200:
        sentence = grammar.realise(grammar.sample_frame(rng))
        if " ".join(sentence.gloss) not in held_gloss:
            drawn.append(sentence)
            rng.random()  # draw_reference's draw (temperature > 0)
    assert all(t in s.phrasings for t, s in zip(texts, drawn))


def test_lm_learns_the_language_and_loads_like_a_pretrained_qwen3(corpus, tmp_path):
    cfg = LMPretrainConfig(n_sentences=2000, epochs=2, batch_size=32, lr=3e-3)
    out = pretrain_demo_lm(corpus, tmp_path / "lm", shape=SHAPE, config=cfg, progress=False)
    stamp = json.loads((out / "lm.json").read_text())
    assert stamp["final_loss"] < 3.0  # from ~log(vocab) = 5.5 nats at the start
    train_texts = [r["text"] for r in _rows(corpus) if r["split"] == "train"]
    lm, tok = build_language_model(LLMConfig(name_or_path=str(out), tiny={}), train_texts, "en")
    # the same vocabulary as the tokenizer SFT builds for a tiny LM on these texts
    assert tok.get_vocab() == tiny_chat_tokenizer(train_texts, "en").get_vocab()
    assert type(lm).__name__ == "Qwen3ForCausalLM" and lm.config.hidden_size == 32
    # it has learnt the language: a sentence of it is likelier than the same words shuffled
    text = train_texts[0]
    words = text.split()

    def nll(t):
        ids = torch.tensor([[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            return lm(input_ids=ids, labels=ids).loss.item()

    assert nll(text) < nll(" ".join(reversed(words)))
    # a finished folder is kept; a different config trains again
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    pretrain_demo_lm(corpus, out, shape=SHAPE, config=cfg, progress=False)
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime
    assert is_finished(out, lm_stamp(corpus, SHAPE, "en", cfg))
    assert not is_finished(out, lm_stamp(corpus, SHAPE, "en", LMPretrainConfig(n_sentences=64, epochs=1)))


def test_a_manifest_without_glosses_is_refused(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"id": "a", "split": "train", "text": "hello", "features": "a.npz"}) + "\n")
    with pytest.raises(RvlfError, match="no 'gloss'"):
        demo_language_text(manifest, 10)
    with pytest.raises(RvlfError, match="n_sentences"):
        LMPretrainConfig(n_sentences=0).validate()
