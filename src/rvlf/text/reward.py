"""The translation reward of SLT-GRPO (Eq. 15): R = lam * BLEU-4 + (1 - lam) * ROUGE-L, in [0, 1].

A sentence metric of the evaluation protocol as much as a reward (dev/test `reward`, the paired tests
of `rvlf.text.significance`), so it sits on the text side; `rvlf.rl.rewards` re-exports it for GRPO.

Scores come from the evaluation protocol (`rvlf.text.metrics.batch_sentence_scores`), so the reward
sees the protocol's tokens: invisible characters (Unicode Cf: zero-width space, BOM, ...) dropped,
any Unicode whitespace a separator, Chinese by character (docs/evaluation.md). Short
references (Sec. 6.3): when a reference has fewer than 4 protocol tokens, terminal marks are appended
to hypothesis and reference until the reference has 4 tokens, so that BLEU-4 has a 4-gram to count.
`tokenize` (`rvlf compare/evaluate --tokenize`) scores the reward on another tokenisation's tokens
(`rvlf.text.metrics.tokenize`); training always uses the protocol's (`slrt`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rvlf.errors import RvlfError
from rvlf.text.metrics import MAX_ORDER, SLRT, batch_sentence_scores, check_lang, check_tokenize, tokenize

KINDS = ("bleu", "rouge", "both")
TERMINAL_MARKS = {"zh": "。"}  # other languages: "."


def has_word(text: str, lang: str, tokenize_as: str = SLRT) -> bool:
    """Whether `text` has a word token: a protocol token (`rvlf.text.metrics.tokenize`) holding a letter
    or a digit (`str.isalnum`: Unicode categories L* and N*, Chinese characters included). Empty,
    whitespace-only, invisible-only and punctuation/symbol-only texts (`。`, `.`, `!?`, `…`) have none."""
    return any(any(c.isalnum() for c in token) for token in tokenize(text, lang, tokenize_as))


def pad_short(hyp: str, ref: str, lang: str, min_tokens: int = MAX_ORDER, tokenize_as: str = SLRT) -> tuple[str, str]:
    """Append `min_tokens - len(ref tokens)` terminal marks to both sentences (Sec. 6.3), if positive."""
    missing = min_tokens - len(tokenize(ref, lang, tokenize_as))
    if missing <= 0:
        return hyp, ref
    mark = TERMINAL_MARKS.get(lang)
    tail = mark * missing if mark else " ." * missing
    return hyp + tail, ref + tail


def translation_reward(hyps: Sequence[str], refs: Sequence[str], lang: str, lam: float = 0.5,
                       kind: str = "both", short_punct: bool = True, tokenize: str = SLRT) -> list[float]:
    """Per-sentence reward in [0, 1] (Eq. 15); `kind` picks BLEU-4 only, ROUGE-L only or both (Table 7).

    A hypothesis without a word token (`has_word`: empty, whitespace, invisible characters or
    punctuation only) gets 0 whatever `kind`: the short-sentence padding would otherwise pay a
    punctuation-only answer like a wrong word (0.375 against a one-word reference).
    `tokenize`: the tokens (`rvlf.text.metrics.TOKENIZE`; default `slrt`, the paper's); under a sacrebleu
    tokenisation the sentence BLEU-4 is sacrebleu's (exp smoothing, effective order).
    """
    if kind not in KINDS:
        raise RvlfError(f"unknown reward {kind!r} (expected one of {', '.join(KINDS)})")
    if not 0.0 <= lam <= 1.0:
        raise RvlfError(f"reward weight lambda must lie in [0, 1], got {lam}")
    check_lang(lang)
    if tokenize != SLRT:
        check_tokenize(tokenize)
    if len(hyps) != len(refs):
        raise RvlfError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if short_punct:
        pairs = [pad_short(h, r, lang, tokenize_as=tokenize) for h, r in zip(hyps, refs)]
        hyps_s, refs_s = [h for h, _ in pairs], [r for _, r in pairs]
    else:
        hyps_s, refs_s = list(hyps), list(refs)
    scores = batch_sentence_scores(hyps_s, refs_s, lang, chrf=False, tokenize=tokenize)
    w_bleu = {"bleu": 1.0, "rouge": 0.0, "both": lam}[kind]
    return [
        (w_bleu * s["bleu4"] + (1.0 - w_bleu) * s["rouge_l"]) / 100.0 if has_word(hyp, lang, tokenize) else 0.0
        for hyp, s in zip(hyps, scores)
    ]
