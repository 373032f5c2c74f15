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
See docs/evaluation.md for the exact protocol and its sacrebleu signatures.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import cache

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

from rvlf.errors import RvlfError
from rvlf.text.script import CHAR_LEVEL, LANGS, has_chinese, script_mismatch, script_problem  # noqa: F401 (re-exported)

MAX_ORDER = 4
PAPER_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")  # the paper's columns
CHRF_KEYS = ("chrf", "chrf++")  # sacrebleu chrF (word order 0) and chrF++ (word order 2)
KEYS = PAPER_KEYS + CHRF_KEYS
CHRF_WORD_ORDER = {"chrf": 0, "chrf++": 2}
_INVISIBLE = frozenset({"Cf", "Cc"})  # format characters; controls (whitespace excepted)


def check_lang(lang: str) -> str:
    """Return `lang` if the protocol knows it, else raise a one-line `RvlfError`."""
    if lang not in LANGS:
        raise RvlfError(f"unknown language {lang!r} (expected one of {', '.join(LANGS)})")
    return lang


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


def tokenize(text: str, lang: str) -> list[str]:
    """Protocol tokens of `normalize(text)`: characters for Chinese (whitespace dropped), else
    the words between runs of Unicode whitespace (`str.split()`: U+0020, U+00A0, U+2009, U+3000, ...)."""
    text = normalize(text)
    if check_lang(lang) in CHAR_LEVEL:
        return [c for c in text if not c.isspace()]
    return text.split()


def protocol_text(text: str, lang: str) -> str:
    """The protocol tokens joined by single spaces: what BLEU and chrF see."""
    return " ".join(tokenize(text, lang))


def bleu_signature(sentence_level: bool) -> str:
    """sacrebleu's signature of the BLEU-4 used at sentence (effective order) or corpus level."""
    bleu = BLEU(tokenize="none", smooth_method="none", effective_order=sentence_level)
    bleu.corpus_score(["a"], [["a"]])  # sacrebleu fills the signature's reference count on use
    return str(bleu.get_signature())


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


def _bleu_n(stats: Sequence[int], effective_order: bool) -> list[float]:
    """BLEU-1..4 from statistics: sacrebleu's `compute_bleu` with max order n, no smoothing."""
    sys_len, ref_len = int(stats[0]), int(stats[1])
    correct, total = stats[2:2 + MAX_ORDER], stats[2 + MAX_ORDER:]
    return [
        BLEU.compute_bleu(list(correct[:n]), list(total[:n]), sys_len, ref_len, smooth_method="none",
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
    """A reference set prepared once (protocol tokens, BLEU n-grams, chrF n-grams) to score
    several systems against it (`statistics`), as `rvlf.text.significance` does."""

    def __init__(self, refs: Sequence[str], lang: str, chrf: tuple[str, ...] = CHRF_KEYS) -> None:
        self.lang = check_lang(lang)
        self.refs = list(refs)
        self.tokens = [tokenize(r, lang) for r in self.refs]
        self.ngrams = [_ngrams(t) for t in self.tokens]
        self.chrf = {key: CHRF(word_order=CHRF_WORD_ORDER[key], references=[[" ".join(t) for t in self.tokens]])
                     for key in chrf}

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
        hyp_toks = [tokenize(h, self.lang) for h in hyps]
        out: dict[str, list] = {
            "bleu": [_bleu_stats(h, r, g) for h, r, g in zip(hyp_toks, self.tokens, self.ngrams)],
            "rouge_l": [rouge_l(h, r) for h, r in zip(hyp_toks, self.tokens)],
        }
        texts = [" ".join(h) for h in hyp_toks]
        for key, metric in self.chrf.items():
            out[key] = metric._extract_corpus_statistics(texts, None)
        return out


def sentence_statistics(hyps: Sequence[str], refs: Sequence[str], lang: str,
                        chrf: tuple[str, ...] = CHRF_KEYS) -> dict[str, list]:
    """Per-sentence sufficient statistics of every protocol metric (`References.statistics`);
    `chrf` picks the chrF keys. Used by `corpus_scores` and `batch_sentence_scores`."""
    _check_pairs(hyps, refs)
    return References(refs, lang, chrf).statistics(hyps)


def batch_sentence_scores(hyps: Sequence[str], refs: Sequence[str], lang: str,
                          chrf: bool = True) -> list[dict[str, float]]:
    """`sentence_scores` of each (hyp, ref) pair (`chrf=False`: the paper's five keys only, faster)."""
    stats = sentence_statistics(hyps, refs, lang, CHRF_KEYS if chrf else ())
    out = []
    for i, (bleu, rouge) in enumerate(zip(stats["bleu"], stats["rouge_l"])):
        scores = dict(zip(PAPER_KEYS, _bleu_n(bleu, effective_order=True) + [100.0 * rouge]))
        if chrf:
            scores.update({key: chrf_from_stats(stats[key][i], key) for key in CHRF_KEYS})
        out.append(scores)
    return out


def sentence_scores(hyp: str, ref: str, lang: str) -> dict[str, float]:
    """BLEU-1..4 (effective order), ROUGE-L, chrF and chrF++ of one hypothesis against one reference, 0-100."""
    return batch_sentence_scores([hyp], [ref], lang)[0]


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], lang: str, chrf: bool = True) -> dict[str, float]:
    """Corpus BLEU-1..4 (summed statistics, no smoothing), mean sentence ROUGE-L, corpus chrF and chrF++
    (summed statistics, sacrebleu's `corpus_score`), 0-100. Keys: `KEYS` (`chrf=False`: `PAPER_KEYS`)."""
    _check_pairs(hyps, refs)
    check_lang(lang)
    if not hyps:
        raise RvlfError("no sentences to score")
    stats = sentence_statistics(hyps, refs, lang, CHRF_KEYS if chrf else ())
    scores = dict(zip(PAPER_KEYS, _bleu_n(_sum_rows(stats["bleu"]), effective_order=False)
                      + [100.0 * sum(stats["rouge_l"]) / len(hyps)]))
    if chrf:
        scores.update({key: chrf_from_stats(_sum_rows(stats[key]), key) for key in CHRF_KEYS})
    return scores


def _sum_rows(rows: Sequence[Sequence[int]]) -> list[int]:
    return [sum(col) for col in zip(*rows)]
