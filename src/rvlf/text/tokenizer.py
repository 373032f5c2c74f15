"""Tokenizers for the translation targets (Sec. 3.1, Sec. 6.3 "Vocab Size").

Two ways to get one, both ending as a `transformers.PreTrainedTokenizerFast`:

* `trim_mbart_tokenizer`: the paper's way (following GFSLT-VLP): load an mBART sentencepiece
  tokenizer and keep only the pieces the training texts use, plus the specials (6,201 pieces
  for CSL-Daily).
* `build_corpus_tokenizer`: built offline from the training corpus with `tokenizers`: words
  with punctuation split off for space-separated languages, characters for Chinese/Japanese.
  Decoding reconstructs the text exactly (spaces included).

`SLTTokenizer` wraps either with the conventions the stage-1 model uses (targets end with
`</s>`, the decoder starts from `<s>`, padding with `<pad>`) and saves/loads with a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, MBartTokenizer, PreTrainedTokenizerFast

from rvlf.errors import InputFileError, RvlfError
from rvlf.hubcheck import is_local, use_cache_if_hub_unreachable

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
CHARACTER_LANGS = frozenset({"zh", "ja", "yue"})
SPACE = "\u2581"  # "▁": marks a word that follows a space (or starts a line)


def is_character_language(lang: str) -> bool:
    """True for languages written without spaces, tokenised into characters (`zh`, `zh-CN`, `ja`...)."""
    return lang.lower().replace("_", "-").split("-")[0] in CHARACTER_LANGS


def _word_pipeline(tok: Tokenizer) -> list[str]:
    """Words with a leading `▁` where a space or line start precedes them; punctuation split off.

    `"Hi, you\\nall"` -> `▁Hi , ▁you \\n ▁all`; decoding removes the markers again, so text
    round-trips exactly. Returns the base tokens always kept in the vocabulary.
    """
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(" ", SPACE), normalizers.Replace(Regex(rf"(?:^|(?<=\n))(?=[^\s{SPACE}])"), SPACE)]
    )
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(rf"{SPACE}?\w+|{SPACE}?[^\w\s{SPACE}]|{SPACE}|\s"), "isolated")
    tok.decoder = decoders.Sequence(
        [decoders.Fuse(), decoders.Replace(f"\n{SPACE}", "\n"), decoders.Replace(SPACE, " "), decoders.Strip(" ", 1, 0)]
    )
    return [SPACE, "\n"]


def _character_pipeline(tok: Tokenizer) -> list[str]:
    """One token per character (spaces and newlines included); decoding concatenates."""
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")
    tok.decoder = decoders.Fuse()
    return [" ", "\n"]


def build_corpus_tokenizer(
    texts: Iterable[str],
    lang: str,
    *,
    extra_special_tokens: Sequence[str] = (),
    chat_template: str | None = None,
) -> PreTrainedTokenizerFast:
    """A word-level (or, for zh/ja, character-level) tokenizer over the training texts.

    Ids 0-3 are `<pad> <s> </s> <unk>`, then `extra_special_tokens` (each a single token,
    never split), then the corpus tokens by frequency. Nothing is added automatically
    on encoding; `chat_template` (Jinja) is stored for `apply_chat_template`.
    """
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    base = _character_pipeline(tok) if is_character_language(lang) else _word_pipeline(tok)
    specials = list(SPECIAL_TOKENS) + [t for t in extra_special_tokens if t not in SPECIAL_TOKENS]
    trainer = trainers.WordLevelTrainer(vocab_size=1 << 30, min_frequency=1, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(list(texts) + base, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        extra_special_tokens=specials[len(SPECIAL_TOKENS) :],
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def _load_mbart(name_or_path: str | Path) -> PreTrainedTokenizerFast:
    """`AutoTokenizer` (hub id or folder); a folder holding only `sentencepiece.bpe.model` is read
    with `sentencepiece` into an `MBartTokenizer` (fairseq layout: `<s> <pad> </s> <unk>` first)."""
    path = Path(name_or_path)
    spm_file = path / "sentencepiece.bpe.model"
    if path.is_dir() and not (path / "tokenizer.json").is_file() and spm_file.is_file():
        try:
            sp = spm.SentencePieceProcessor(model_file=str(spm_file))
        except (OSError, RuntimeError) as exc:
            raise InputFileError(spm_file, f"not a sentencepiece model ({exc})") from None
        pieces = [
            (sp.id_to_piece(i), sp.get_score(i))
            for i in range(sp.get_piece_size())
            if not (sp.is_control(i) or sp.is_unknown(i))
        ]
        return MBartTokenizer(vocab=[(t, 0.0) for t in (BOS, PAD, EOS, UNK)] + pieces)
    use_cache_if_hub_unreachable(name_or_path)  # no network: the cache in seconds, not a minute of retries
    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("" if is_local(name_or_path)
                else f"; download it once with `hf download {name_or_path}` or pass a local folder")
        raise RvlfError(f"{name_or_path}: cannot load an mBART tokenizer ({first}{hint})") from None


def trim_mbart_tokenizer(
    name_or_path: str | Path, texts: Iterable[str], *, keep_tokens: Sequence[str] = ()
) -> PreTrainedTokenizerFast:
    """The mBART sentencepiece tokenizer trimmed to the pieces `texts` use (GFSLT-VLP, Sec. 6.3).

    Keeps `<s> <pad> </s> <unk>`, every piece of the tokenised texts and `keep_tokens` (e.g. a
    language code such as `de_DE`), in their original order. The unigram model over the kept
    pieces segments the training texts exactly as the full one does (the best path survives).
    mBART's post-processor (`</s> lang_code` suffix) is dropped: `SLTTokenizer` adds `</s>`.
    """
    full = _load_mbart(name_or_path)
    spec = json.loads(full.backend_tokenizer.to_str())
    if spec["model"]["type"] != "Unigram":
        raise RvlfError(f"{name_or_path}: expected a sentencepiece (unigram) tokenizer, got {spec['model']['type']}")
    vocab = full.get_vocab()
    missing = [t for t in (*SPECIAL_TOKENS, *keep_tokens) if t not in vocab]
    if missing:
        raise RvlfError(f"{name_or_path}: tokenizer lacks the tokens {missing}")
    used = {i for ids in full(list(texts), add_special_tokens=False)["input_ids"] for i in ids}
    keep = sorted(used | {vocab[t] for t in (*SPECIAL_TOKENS, *keep_tokens)})

    pieces = spec["model"]["vocab"]
    new_pieces = [pieces[i] for i in keep if i < len(pieces)]
    new_id = {p[0]: n for n, p in enumerate(new_pieces)}
    added = []
    for entry in sorted(spec["added_tokens"], key=lambda e: e["id"]):
        if entry["id"] in keep:
            if entry["content"] not in new_id:
                new_id[entry["content"]] = len(new_id)
            added.append({**entry, "id": new_id[entry["content"]]})
    spec["model"]["vocab"] = new_pieces
    spec["model"]["unk_id"] = new_id[UNK]
    spec["added_tokens"] = added
    spec["post_processor"] = None
    kept_extra = [t for t in keep_tokens if t not in SPECIAL_TOKENS]
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        extra_special_tokens=kept_extra,
        clean_up_tokenization_spaces=False,
    )


class SLTTokenizer:
    """Text <-> ids for the stage-1 decoder: a target is its tokens followed by `</s>`."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast):
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
            if getattr(tokenizer, name) is None:
                raise RvlfError(f"tokenizer has no {name.removesuffix('_id')} (need <pad>, <s>, </s>, <unk>)")
        self.tokenizer = tokenizer

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def bos_id(self) -> int:
        return self.tokenizer.bos_token_id

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Token ids of `text` then `</s>`; at most `max_length` ids (the `</s>` is kept)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_length is not None:
            ids = ids[: max_length - 1]
        return ids + [self.eos_id]

    def batch_encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`(input_ids [B,L], attention_mask [B,L])`, right-padded with `<pad>`."""
        rows = [self.encode(t, max_length) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[b, : len(r)] = 1
        return ids, mask

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of `ids` up to the first `</s>`, special tokens dropped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def batch_decode(self, ids: torch.Tensor | Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(row) for row in ids]

    def save(self, directory: str | Path) -> None:
        """Write `tokenizer.json` and its config into `directory` (created if needed)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))

    @classmethod
    def load(cls, directory: str | Path) -> SLTTokenizer:
        """Read a tokenizer written by `save` (or any `tokenizer.json` folder)."""
        path = Path(directory)
        if not (path / "tokenizer.json").is_file():
            raise InputFileError(path, "no tokenizer.json here (expected a saved rvlf tokenizer)")
        try:
            tok = PreTrainedTokenizerFast.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise InputFileError(path / "tokenizer.json", f"cannot read tokenizer ({exc})") from None
        return cls(tok)
