"""Tokenizers: corpus-built (en/de/zh), the trimmed mBART sentencepiece one, save/load."""

from __future__ import annotations

import pytest

from rvlf.errors import InputFileError, RvlfError
from rvlf.text.tokenizer import SLTTokenizer, _load_mbart, build_corpus_tokenizer, trim_mbart_tokenizer

EN = ["Hello, world! Don't stop.", "the weather is nice today", "It's 3.5 degrees in the north-west."]
DE = ["am tag regnet es im norden.", "Über größe schwäbisch", "morgen früh (sonntag) wird es kühl"]
ZH = ["今天天气很好。", "我爱你", "明天 下雨，注意带伞！"]
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize(("texts", "lang"), [(EN, "en"), (DE, "de"), (ZH, "zh")])
def test_corpus_tokenizer_round_trips(texts, lang):
    tok = SLTTokenizer(build_corpus_tokenizer(texts, lang))
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    for text in texts:
        ids = tok.encode(text)
        assert ids[-1] == tok.eos_id and tok.tokenizer.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_word_level_splits_punctuation_and_zh_is_characters():
    en = build_corpus_tokenizer(EN, "en")
    assert en.tokenize("Hello, world!") == ["\u2581Hello", ",", "\u2581world", "!"]
    assert en.tokenize("Don't") == ["\u2581Don", "'", "t"]
    zh = build_corpus_tokenizer(ZH, "zh-CN")
    assert zh.tokenize("我爱你") == ["我", "爱", "你"]
    assert zh.decode(zh("明天 下雨")["input_ids"]) == "明天 下雨"


def test_unknown_word_maps_to_unk():
    tok = SLTTokenizer(build_corpus_tokenizer(EN, "en"))
    ids = tok.encode("hello zebra")
    assert ids.count(tok.tokenizer.unk_token_id) == 2  # "hello" is only known capitalised


def test_batch_encode_pads_and_truncates_keeping_eos():
    tok = SLTTokenizer(build_corpus_tokenizer(EN, "en"))
    ids, mask = tok.batch_encode(["the weather", "the weather is nice today"])
    assert ids.shape == mask.shape == (2, 6)
    assert ids[0].tolist()[2:] == [tok.eos_id, tok.pad_id, tok.pad_id, tok.pad_id]
    assert mask.sum(1).tolist() == [3, 6]
    short, _ = tok.batch_encode(["the weather is nice today"], max_length=3)
    assert short[0, -1] == tok.eos_id and short.shape == (1, 3)
    assert tok.batch_decode(ids) == ["the weather", "the weather is nice today"]


def test_chat_special_tokens_are_single_and_template_applies(tmp_path):
    corpus = EN + ["user assistant"]
    fast = build_corpus_tokenizer(
        corpus, "en", extra_special_tokens=["<|im_start|>", "<|im_end|>"], chat_template=QWEN_TEMPLATE
    )
    start, end = fast.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert fast.tokenize("<|im_start|>the<|im_end|>") == ["<|im_start|>", "\u2581the", "<|im_end|>"]
    msgs = [{"role": "user", "content": "the weather"}]
    text = fast.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nthe weather<|im_end|>\n<|im_start|>assistant\n"
    ids = fast(text, add_special_tokens=False)["input_ids"]
    assert ids.count(start) == 2 and ids.count(end) == 1 and fast.unk_token_id not in ids
    # the response tokenises the same alone as after the prompt
    joint = fast(text + "the weather", add_special_tokens=False)["input_ids"]
    assert joint == ids + fast("the weather", add_special_tokens=False)["input_ids"]
    SLTTokenizer(fast).save(tmp_path / "tok")
    back = SLTTokenizer.load(tmp_path / "tok").tokenizer
    assert back.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == text
    assert back(text, add_special_tokens=False)["input_ids"] == ids


@pytest.mark.parametrize(("texts", "lang"), [(DE, "de"), (ZH, "zh")])
def test_save_load_round_trip(tmp_path, texts, lang):
    tok = SLTTokenizer(build_corpus_tokenizer(texts, lang))
    tok.save(tmp_path / "tok")
    back = SLTTokenizer.load(tmp_path / "tok")
    assert back.vocab_size == tok.vocab_size
    for text in texts:
        assert back.encode(text) == tok.encode(text)
        assert back.decode(back.encode(text)) == text


def test_load_missing_directory_is_one_line_error(tmp_path):
    with pytest.raises(InputFileError, match="tokenizer.json"):
        SLTTokenizer.load(tmp_path / "nothing")


def _sentencepiece_dir(tmp_path):
    """A tiny real sentencepiece unigram model, laid out like an mBART checkpoint folder."""
    spm = pytest.importorskip("sentencepiece")
    corpus = EN + DE + ["the quick brown fox jumps over the lazy dog", "der wind weht aus nordwest"]
    folder = tmp_path / "mbart"
    folder.mkdir()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 10),
        model_prefix=str(tmp_path / "m"),
        vocab_size=80,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,  # fairseq layout, as the real mBART sentencepiece.bpe.model
        minloglevel=2,
    )
    (tmp_path / "m.model").rename(folder / "sentencepiece.bpe.model")
    return folder


def test_trim_mbart_keeps_used_pieces_and_segments_identically(tmp_path):
    from transformers import AutoTokenizer

    folder = _sentencepiece_dir(tmp_path)
    train = ["the weather is nice today", "am tag regnet es im norden."]
    trimmed = trim_mbart_tokenizer(folder, train, keep_tokens=["de_DE"])
    full = _load_mbart(folder)
    used = {t for s in train for t in full.tokenize(s)}
    assert set(trimmed.get_vocab()) == used | {"<s>", "<pad>", "</s>", "<unk>", "de_DE"}
    assert len(trimmed) < len(full)
    assert trimmed.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>"]) == [0, 1, 2, 3]
    tok = SLTTokenizer(trimmed)
    for s in train:
        assert trimmed.tokenize(s) == full.tokenize(s)
        assert tok.decode(tok.encode(s)) == s
    assert tok.tokenizer.unk_token_id in tok.encode("zebra")  # z is no kept piece

    # the same through a saved MBartTokenizer folder (tokenizer.json, as from the hub)
    full.save_pretrained(tmp_path / "saved")
    assert type(AutoTokenizer.from_pretrained(str(tmp_path / "saved"))).__name__ == "MBartTokenizer"
    again = trim_mbart_tokenizer(tmp_path / "saved", train, keep_tokens=["de_DE"])
    assert again.get_vocab() == trimmed.get_vocab()
    tok.save(tmp_path / "trimmed")
    assert SLTTokenizer.load(tmp_path / "trimmed").encode(train[1]) == tok.encode(train[1])


def test_trim_mbart_bad_path_is_one_line_error(tmp_path):
    with pytest.raises(RvlfError, match="cannot load an mBART tokenizer"):
        trim_mbart_tokenizer(tmp_path / "absent", ["x"])
