"""The SLT evaluation protocol of SLRT / signjoey: BLEU-1..4 and ROUGE-L on a 0-100 scale, plus chrF.

Text hygiene first (`normalize`): format characters (Unicode category Cf: zero-width space and
joiners, BOM, soft hyphen, bidi marks, ...) and control characters other than whitespace are
dropped, then the text is put in Unicode NFC, so that text that looks identical scores identically.
Tokens: Chinese is split into characters (whitespace dropped); German and English are split on
any Unicode whitespace, as given. BLEU is sacrebleu's (`tokenize='none'`, no smoothing); BLEU-n
for n < 4 is the BLEU of maximum order n (SLRT's cumulative weights). Sentence BLEU uses
sacrebleu's effective order; corpus BLEU sums the n-gram statistics of all sentences. ROUGE-L is
the LCS F-measure of tf-seq2seq's `rouge.py` (beta = P/R), and corpus ROUGE-L is the mean of the
sentence scores. chrF and chrF++ are sacrebleu's `CHRF()` / `CHRF(word_order=2)` on the protocol
tokens joined by single spaces (not in the paper; beside its columns).

`tokenize` (every scoring function, `--tokenize` on the commands) picks the tokens: `slrt` (the
protocol above, the default) or one of sacrebleu's own tokenisations (`13a`, `intl`, `zh`, `char`,
`none`; `ja-mecab`/`ko-mecab` where their packages are installed), applied by sacrebleu itself after
the same text hygiene, with sacrebleu's default BLEU (`smooth_method='exp'`), so the scores equal
`sacrebleu.corpus_bleu(hyps, [refs], tokenize=...)` and carry its signature (`signature`).
See docs/evaluation.md for the exact protocol and its sacrebleu signatures.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import cache

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from rvlf.errors import InputFileError, RvlfError
from rvlf.text.script import (CHAR_LEVEL, LANGS, check_scoring_lang, has_chinese,  # noqa: F401 (re-exported)
                              script_mismatch, script_problem)
from rvlf.text.script import (DOWNLOADING_TOKENIZE, MECAB_TOKENIZE, SACREBLEU_TOKENIZE, SLRT,  # noqa: F401
                              TOKENIZE)

_LANG_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*", re.IGNORECASE)
MAX_ORDER = 4
PAPER_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")  # the paper's columns
CHRF_KEYS = ("chrf", "chrf++")  # sacrebleu chrF (word order 0) and chrF++ (word order 2)
KEYS = PAPER_KEYS + CHRF_KEYS
CHRF_WORD_ORDER = {"chrf": 0, "chrf++": 2}
_INVISIBLE = frozenset({"Cf", "Cc"})  # format characters; controls (whitespace excepted)


def check_lang(lang: str) -> str:
    """Return `lang` if it is a language code (ISO 639 `fr`, `gsw`, or BCP 47 `zh-CN`), else raise a
    one-line `RvlfError`. Under `slrt`, `zh` (and `zh-*`) is scored by character, any other language
    by whitespace tokens; whether the texts' script fits is checked on the texts (`check_scoring`)."""
    if not isinstance(lang, str) or not _is_lang_code(lang):
        raise RvlfError(f"unknown language {lang!r} (expected a language code such as {', '.join(LANGS)} or fr)")
    return lang


@cache
def _is_lang_code(lang: str) -> bool:
    return _LANG_CODE.fullmatch(lang) is not None


@cache
def _char_level(lang: str) -> bool:
    """Whether `slrt` scores `lang` by character (Chinese: zh, zh-CN, ...)."""
    return lang in CHAR_LEVEL or lang.split("-")[0].lower() in CHAR_LEVEL


def check_tokenize(tokenize: str) -> str:
    """Return `tokenize` if it works here and offline (`TOKENIZE`), else raise a one-line `RvlfError`
    that says why (unknown; a sacrebleu tokenisation that downloads a model; a missing package)."""
    if tokenize in DOWNLOADING_TOKENIZE:
        raise RvlfError(f"--tokenize {tokenize}: sacrebleu downloads its SentencePiece model at first use, which "
                        f"rvlf does not do (scores must not depend on the network); use one of {', '.join(TOKENIZE)}")
    if tokenize not in TOKENIZE:
        raise RvlfError(f"unknown tokenisation {tokenize!r} (expected one of {', '.join(TOKENIZE)})")
    if tokenize in MECAB_TOKENIZE:
        try:
            _sacrebleu_tokenizer(tokenize)
        except (RuntimeError, ImportError):
            extra = MECAB_TOKENIZE[tokenize]
            raise RvlfError(f"--tokenize {tokenize} needs sacrebleu's MeCab packages: pip install 'sacrebleu[{extra}]'") \
                from None
    return tokenize


def standard_tokenize(lang: str) -> str:
    """sacrebleu's standard tokenisation for `lang`: `zh` for Chinese, else `13a` (sacrebleu's default),
    what most SLT papers that use sacrebleu report with (docs/evaluation.md)."""
    return "zh" if _char_level(check_lang(lang)) else "13a"


@cache
def _sacrebleu_tokenizer(tokenize: str):
    """sacrebleu's tokenizer object for `tokenize` (what `BLEU(tokenize=...)` applies to each line)."""
    return BLEU(tokenize=tokenize).tokenizer


def smooth_method(tokenize: str) -> str:
    """The BLEU smoothing of a tokenisation: none for the paper's protocol (SLRT), sacrebleu's default
    `exp` for sacrebleu's tokenisations (only changes a BLEU whose n-gram order has no match)."""
    return "none" if tokenize == SLRT else "exp"


def normalize(text: str) -> str:
    """The protocol's text hygiene, for every language: drop invisible characters, then NFC.

    Dropped: Unicode category Cf (U+200B zero-width space, U+200C/U+200D zero-width (non-)joiner,
    U+FEFF BOM / zero-width no-break space, U+00AD soft hyphen, U+2060 word joiner, bidi marks and
    embeddings, ...) and category Cc control characters that are not whitespace (NUL, DEL, ...).
    Whitespace of any kind (U+00A0, U+2009, U+3000, tabs, ...) is kept: the tokenizer splits on it.
    NFC makes a precomposed "ä" and "a" + combining diaeresis the same text.
    """
    if not text.isprintable():  # fast path: printable text has no Cc/Cf (nor non-ASCII spaces)
        text = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in _INVISIBLE)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


def tokenize(text: str, lang: str, tokenize: str = SLRT) -> list[str]:
    """Tokens of `normalize(text)`. `slrt` (the protocol): characters for Chinese (whitespace dropped),
    else the words between runs of Unicode whitespace (`str.split()`: U+0020, U+00A0, U+2009, U+3000, ...).
    A sacrebleu tokenisation (`13a`, `intl`, `zh`, `char`, `none`, ...): sacrebleu's tokenizer on the
    text (trailing whitespace stripped, as sacrebleu's BLEU does), split on whitespace."""
    return _tokens(text, lang, tokenize)


def _tokens(text: str, lang: str, tok: str) -> list[str]:
    text = normalize(text)
    if tok == SLRT:
        if _char_level(check_lang(lang)):
            return [c for c in text if not c.isspace()]
        return text.split()
    check_lang(lang)
    return _sacrebleu_tokenizer(check_tokenize(tok))(text.rstrip()).split()


def protocol_text(text: str, lang: str, tokenize: str = SLRT) -> str:
    """The tokens joined by single spaces: what BLEU and (under `slrt`) chrF see."""
    return " ".join(_tokens(text, lang, tokenize))


def bleu_signature(sentence_level: bool, tokenize: str = SLRT) -> str:
    """sacrebleu's signature of the BLEU-4 used at sentence (effective order) or corpus level; under
    `slrt` rvlf makes the tokens and sacrebleu's part is `tok:none`."""
    bleu = BLEU(tokenize="none" if tokenize == SLRT else check_tokenize(tokenize), smooth_method=smooth_method(tokenize),
                effective_order=sentence_level)
    bleu.corpus_score(["a"], [["a"]])  # sacrebleu fills the signature's reference count on use
    return str(bleu.get_signature())


def signature(lang: str, tokenize: str = SLRT) -> str:
    """One line naming how scores were made: the protocol, the language's tokens and sacrebleu's corpus
    BLEU signature, e.g. `slrt:en(whitespace)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0`
    or `sacrebleu:en|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`."""
    check_lang(lang)
    if tokenize == SLRT:
        head = f"slrt:{lang}({'characters' if _char_level(lang) else 'whitespace'})"
    else:
        head = f"sacrebleu:{lang}"
    return f"{head}|{bleu_signature(False, tokenize)}"


def protocol(lang: str, tokenize: str = SLRT) -> dict[str, str]:
    """What a set of scores was computed with, for `results.json`, `rvlf evaluate` and `rvlf compare`:
    `{"tokenize", "lang", "signature" (`signature`), "bleu" (corpus BLEU signature), "chrf", "chrf++"}`."""
    return {"tokenize": tokenize, "lang": lang, "signature": signature(lang, tokenize),
            "bleu": bleu_signature(False, tokenize), "chrf": chrf_signature("chrf"), "chrf++": chrf_signature("chrf++")}


def _ngrams(tokens: list[str]) -> Counter:
    """Counts of the 1..4-grams of `tokens` (tuples)."""
    return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


def _bleu_stats(hyp: list[str], ref: list[str], ref_ngrams: Counter | None = None) -> list[int]:
    """sacrebleu's sufficient statistics `[hyp_len, ref_len, correct_1..4, total_1..4]`."""
    ref_ngrams = _ngrams(ref) if ref_ngrams is None else ref_ngrams
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for gram, count in _ngrams(hyp).items():
        total[len(gram) - 1] += count
        correct[len(gram) - 1] += min(count, ref_ngrams.get(gram, 0))
    return [len(hyp), len(ref), *correct, *total]


def _bleu_n(stats: Sequence[int], effective_order: bool, smooth: str = "none") -> list[float]:
    """BLEU-1..4 from statistics: sacrebleu's `compute_bleu` with max order n and smoothing `smooth`."""
    sys_len, ref_len = int(stats[0]), int(stats[1])
    correct, total = stats[2:2 + MAX_ORDER], stats[2 + MAX_ORDER:]
    return [
        BLEU.compute_bleu(list(correct[:n]), list(total[:n]), sys_len, ref_len, smooth_method=smooth,
                          effective_order=effective_order, max_ngram_order=n).score
        for n in range(1, MAX_ORDER + 1)
    ]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (bit-parallel, Hyyrö 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(hyp: Sequence[str], ref: Sequence[str]) -> float:
    """tf-seq2seq sentence ROUGE-L F-measure in [0, 1], with beta = P / R (and its 1e-12 guards)."""
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    r, p = lcs / len(ref), lcs / len(hyp)
    beta2 = (p / (r + 1e-12)) ** 2
    return (1 + beta2) * r * p / (r + beta2 * p + 1e-12)


@cache
def chrf_metric(key: str = "chrf") -> CHRF:
    """The sacrebleu metric behind `key` ("chrf": chrF2, "chrf++": chrF2++), default settings."""
    return CHRF(word_order=CHRF_WORD_ORDER[key])


def chrf_signature(key: str = "chrf") -> str:
    """sacrebleu's signature of the chrF (`key="chrf"`) or chrF++ (`key="chrf++"`) used here."""
    metric = CHRF(word_order=CHRF_WORD_ORDER[key])
    metric.corpus_score(["a"], [["a"]])
    return str(metric.get_signature())


def chrf_from_stats(stats: Sequence[float], key: str = "chrf") -> float:
    """chrF (0-100) from summed sacrebleu statistics `[hyp, ref, match] x orders`."""
    return chrf_metric(key)._compute_f_score(list(stats))


def _check_pairs(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise RvlfError(f"{len(hyps)} hypotheses but {len(refs)} references")


class References:
    """A reference set prepared once (tokens, BLEU n-grams, chrF n-grams) to score several systems
    against it (`statistics`), as `rvlf.text.significance` does. `tokenize`: see `tokenize`."""

    def __init__(self, refs: Sequence[str], lang: str, chrf: tuple[str, ...] = CHRF_KEYS,
                 tokenize: str = SLRT) -> None:
        self.lang = check_lang(lang)
        self.tokenize = tokenize if tokenize == SLRT else check_tokenize(tokenize)
        self.refs = list(refs)
        self.tokens = [_tokens(r, lang, tokenize) for r in self.refs]
        self.ngrams = [_ngrams(t) for t in self.tokens]
        self.chrf = {key: CHRF(word_order=CHRF_WORD_ORDER[key], references=[[self._chrf_text(r, t) for r, t in
                                                                              zip(self.refs, self.tokens)]])
                     for key in chrf}

    def _chrf_text(self, text: str, tokens: list[str]) -> str:
        """What chrF reads: the protocol's tokens joined by spaces under `slrt`; under a sacrebleu
        tokenisation the text itself (after hygiene), as sacrebleu's chrF, which has no tokenisation."""
        return " ".join(tokens) if self.tokenize == SLRT else normalize(text)

    def __len__(self) -> int:
        return len(self.refs)

    def statistics(self, hyps: Sequence[str]) -> dict[str, list]:
        """Per-sentence sufficient statistics of `hyps` against these references, one entry a pair.

        Returns `{"bleu": [[hyp_len, ref_len, correct_1..4, total_1..4], ...], "rouge_l": [F in [0, 1], ...],
        "chrf": [[hyp, ref, match] x 6 char orders, ...], "chrf++": [... x (6 char + 2 word orders)]}`
        (the chrF keys given at construction): sums of `bleu` / chrF rows give the corpus BLEU / chrF
        (sacrebleu's `compute_bleu` / `_compute_f_score`), the mean of `rouge_l` the corpus ROUGE-L.
        """
        _check_pairs(hyps, self.refs)
        hyp_toks = [_tokens(h, self.lang, self.tokenize) for h in hyps]
        out: dict[str, list] = {
            "bleu": [_bleu_stats(h, r, g) for h, r, g in zip(hyp_toks, self.tokens, self.ngrams)],
            "rouge_l": [rouge_l(h, r) for h, r in zip(hyp_toks, self.tokens)],
        }
        if self.chrf:
            texts = [self._chrf_text(h, t) for h, t in zip(hyps, hyp_toks)]
            for key, metric in self.chrf.items():
                out[key] = metric._extract_corpus_statistics(texts, None)
        return out


def sentence_statistics(hyps: Sequence[str], refs: Sequence[str], lang: str,
                        chrf: tuple[str, ...] = CHRF_KEYS, tokenize: str = SLRT) -> dict[str, list]:
    """Per-sentence sufficient statistics of every metric (`References.statistics`);
    `chrf` picks the chrF keys. Used by `corpus_scores` and `batch_sentence_scores`."""
    _check_pairs(hyps, refs)
    return References(refs, lang, chrf, tokenize).statistics(hyps)


def batch_sentence_scores(hyps: Sequence[str], refs: Sequence[str], lang: str,
                          chrf: bool = True, tokenize: str = SLRT) -> list[dict[str, float]]:
    """`sentence_scores` of each (hyp, ref) pair (`chrf=False`: the paper's five keys only, faster)."""
    stats = sentence_statistics(hyps, refs, lang, CHRF_KEYS if chrf else (), tokenize)
    smooth = smooth_method(tokenize)
    out = []
    for i, (bleu, rouge) in enumerate(zip(stats["bleu"], stats["rouge_l"])):
        scores = dict(zip(PAPER_KEYS, _bleu_n(bleu, effective_order=True, smooth=smooth) + [100.0 * rouge]))
        if chrf:
            scores.update({key: chrf_from_stats(stats[key][i], key) for key in CHRF_KEYS})
        out.append(scores)
    return out


def sentence_scores(hyp: str, ref: str, lang: str, tokenize: str = SLRT) -> dict[str, float]:
    """BLEU-1..4 (effective order), ROUGE-L, chrF and chrF++ of one hypothesis against one reference, 0-100.
    Under a sacrebleu tokenisation BLEU is `sacrebleu.sentence_bleu`'s (exp smoothing)."""
    return batch_sentence_scores([hyp], [ref], lang, tokenize=tokenize)[0]


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], lang: str, chrf: bool = True,
                  tokenize: str = SLRT) -> dict[str, float]:
    """Corpus BLEU-1..4 (summed statistics), mean sentence ROUGE-L, corpus chrF and chrF++
    (summed statistics, sacrebleu's `corpus_score`), 0-100. Keys: `KEYS` (`chrf=False`: `PAPER_KEYS`).

    `tokenize="slrt"` (default): the paper's protocol, no smoothing. A sacrebleu tokenisation: BLEU-n
    equals `sacrebleu.BLEU(tokenize=tokenize, max_ngram_order=n).corpus_score(hyps, [refs])` (its default
    exp smoothing), ROUGE-L is on the same tokens, chrF/chrF++ are sacrebleu's on the text."""
    _check_pairs(hyps, refs)
    check_lang(lang)
    if not hyps:
        raise RvlfError("no sentences to score")
    stats = sentence_statistics(hyps, refs, lang, CHRF_KEYS if chrf else (), tokenize)
    scores = dict(zip(PAPER_KEYS, _bleu_n(_sum_rows(stats["bleu"]), effective_order=False, smooth=smooth_method(tokenize))
                      + [100.0 * sum(stats["rouge_l"]) / len(hyps)]))
    if chrf:
        scores.update({key: chrf_from_stats(_sum_rows(stats[key]), key) for key in CHRF_KEYS})
    return scores


def standard_bleu(hyps: Sequence[str], refs: Sequence[str], lang: str) -> dict:
    """sacrebleu's standard corpus BLEU-1..4 for `lang` (`standard_tokenize`: `13a`, or `zh` for Chinese;
    exp smoothing), to set beside the protocol's scores (`results.json`'s `test_sacrebleu`, `rvlf evaluate`):
    `{"tokenize", "bleu1".."bleu4", "signature"}`."""
    tok = standard_tokenize(lang)
    scores = corpus_scores(hyps, refs, lang, chrf=False, tokenize=tok)
    return {"tokenize": tok, **{k: scores[k] for k in PAPER_KEYS if k != "rouge_l"}, "signature": signature(lang, tok)}


def check_scoring(refs: Sequence[str], lang: str, tokenize: str, where: str) -> str | None:
    """Refuse a language or tokenisation that the references' script contradicts; returns a warning
    or None. `slrt`: `rvlf.text.script.check_scoring_lang`. sacrebleu's `zh`: references mostly without
    Chinese characters are an error. `13a`, `intl`, `none`: mostly Chinese references without spaces are
    an error (a sentence would be one token), word-segmented ones a warning. `char`, `ja-mecab`,
    `ko-mecab`: any script."""
    check_lang(lang)
    if tokenize == SLRT:
        return check_scoring_lang(refs, "zh" if _char_level(lang) else lang, where)
    check_tokenize(tokenize)
    if tokenize == "zh":
        m = script_mismatch(refs, "zh")
        if m is not None:
            raise InputFileError(where, f"{m['wrong']} of {m['of']} references hold no Chinese character (e.g. "
                                        f"{m['example']!r}), but --tokenize zh is sacrebleu's tokenisation for Chinese: "
                                        "give --tokenize 13a (or the language's own)")
    elif tokenize in ("13a", "intl", "none"):
        m = script_mismatch(refs, "en")
        if m is not None and not m["segmented"]:
            raise InputFileError(where, f"{m['wrong']} of {m['of']} references are Chinese without spaces (e.g. "
                                        f"{m['example']!r}), but --tokenize {tokenize} splits at spaces (a sentence would be "
                                        "one token): give --tokenize zh or char")
        if m is not None:
            return (f"{where}: {m['wrong']} of {m['of']} references are word-segmented Chinese (e.g. "
                    f"{m['example']!r}): scored by words as --tokenize {tokenize} asks")
    return None


def _sum_rows(rows: Sequence[Sequence[int]]) -> list[int]:
    return [sum(col) for col in zip(*rows)]
