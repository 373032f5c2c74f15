"""The SLT evaluation protocol of SLRT / signjoey: BLEU-1..4 and ROUGE-L on a 0-100 scale.

Tokens: Chinese is split into characters (whitespace dropped); German and English are split on
whitespace, as given. BLEU is sacrebleu's (`tokenize='none'`, no smoothing); BLEU-n for n < 4 is
the BLEU of maximum order n (SLRT's cumulative weights). Sentence BLEU uses sacrebleu's effective
order; corpus BLEU sums the n-gram statistics of all sentences. ROUGE-L is the LCS F-measure of
tf-seq2seq's `rouge.py` (beta = P/R), and corpus ROUGE-L is the mean of the sentence scores.
See docs/evaluation.md for the exact protocol and its sacrebleu signature.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sacrebleu.metrics.bleu import BLEU

from rvlf.errors import RvlfError

LANGS = ("zh", "de", "en")
CHAR_LEVEL = frozenset({"zh"})
MAX_ORDER = 4
KEYS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")


def check_lang(lang: str) -> str:
    """Return `lang` if the protocol knows it, else raise a one-line `RvlfError`."""
    if lang not in LANGS:
        raise RvlfError(f"unknown language {lang!r} (expected one of {', '.join(LANGS)})")
    return lang


def tokenize(text: str, lang: str) -> list[str]:
    """Protocol tokens: characters for Chinese (whitespace dropped), whitespace words otherwise."""
    if check_lang(lang) in CHAR_LEVEL:
        return [c for c in text if not c.isspace()]
    return text.split()


def bleu_signature(sentence_level: bool) -> str:
    """sacrebleu's signature of the BLEU-4 used at sentence (effective order) or corpus level."""
    bleu = BLEU(tokenize="none", smooth_method="none", effective_order=sentence_level)
    bleu.corpus_score(["a"], [["a"]])  # sacrebleu fills the signature's reference count on use
    return str(bleu.get_signature())


def _bleu_stats(hyp: list[str], ref: list[str]) -> list[int]:
    """sacrebleu's sufficient statistics `[hyp_len, ref_len, correct_1..4, total_1..4]`."""
    def ngrams(tokens: list[str]) -> Counter:
        return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))

    hyp_ngrams, ref_ngrams = ngrams(hyp), ngrams(ref)
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for gram, count in hyp_ngrams.items():
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


def _check_pairs(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise RvlfError(f"{len(hyps)} hypotheses but {len(refs)} references")


def batch_sentence_scores(hyps: Sequence[str], refs: Sequence[str], lang: str) -> list[dict[str, float]]:
    """`sentence_scores` of each (hyp, ref) pair."""
    _check_pairs(hyps, refs)
    check_lang(lang)
    out = []
    for hyp, ref in zip(hyps, refs):
        h, r = tokenize(hyp, lang), tokenize(ref, lang)
        scores = _bleu_n(_bleu_stats(h, r), effective_order=True) + [100.0 * rouge_l(h, r)]
        out.append(dict(zip(KEYS, scores)))
    return out


def sentence_scores(hyp: str, ref: str, lang: str) -> dict[str, float]:
    """BLEU-1..4 (effective order) and ROUGE-L of one hypothesis against one reference, 0-100."""
    return batch_sentence_scores([hyp], [ref], lang)[0]


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], lang: str) -> dict[str, float]:
    """Corpus BLEU-1..4 (summed statistics, no smoothing) and mean sentence ROUGE-L, 0-100."""
    _check_pairs(hyps, refs)
    check_lang(lang)
    if not hyps:
        raise RvlfError("no sentences to score")
    totals = [0] * (2 + 2 * MAX_ORDER)
    rouge_sum = 0.0
    for hyp, ref in zip(hyps, refs):
        h, r = tokenize(hyp, lang), tokenize(ref, lang)
        totals = [a + b for a, b in zip(totals, _bleu_stats(h, r))]
        rouge_sum += rouge_l(h, r)
    scores = _bleu_n(totals, effective_order=False) + [100.0 * rouge_sum / len(hyps)]
    return dict(zip(KEYS, scores))
