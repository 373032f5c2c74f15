"""`rvlf score`: BLEU-1..4, ROUGE-L, chrF and chrF++ of hypothesis and reference files (docs/evaluation.md)."""

from __future__ import annotations

import json
import logging

from rvlf.errors import InputFileError, RvlfError
from rvlf.text.files import read_lines
from rvlf.text.script import LANGS  # rvlf.text.metrics (sacrebleu) is imported by run: --help stays quick

__all__ = ["read_lines", "register", "run"]



def register(sub) -> None:
    p = sub.add_parser("score", help="BLEU-1..4, ROUGE-L, chrF and chrF++ of hypothesis and reference files",
                       description="Score hypotheses against references with the SLRT/signjoey protocol "
                                   "(0-100; see docs/evaluation.md), plus sacrebleu chrF and chrF++ on the "
                                   "protocol's tokens. Files are UTF-8 (BOM allowed), one sentence a line. "
                                   "Prints JSON, scores rounded to 4 decimals.")
    p.add_argument("--hyp", required=True, help="hypothesis file")
    p.add_argument("--ref", required=True, help="reference file (same number of lines)")
    p.add_argument("--lang", required=True, metavar="{" + ",".join(LANGS) + "}",
                   help="zh: character level; de, en: whitespace tokens")
    p.add_argument("--sentence", action="store_true", help="one JSON object a line instead of corpus scores")
    p.set_defaults(func=run)


def run(args) -> int:
    from rvlf.text.metrics import batch_sentence_scores, check_lang, corpus_scores
    from rvlf.text.script import check_scoring_lang

    lang = check_lang(args.lang)
    hyps, refs = read_lines(args.hyp), read_lines(args.ref)
    if len(hyps) != len(refs):
        raise RvlfError(f"{args.hyp} has {len(hyps)} lines but {args.ref} has {len(refs)}")
    if not refs:
        raise InputFileError(args.ref, "no sentences")
    warning = check_scoring_lang(refs, lang, args.ref)  # a wrong --lang scores in the wrong units
    if warning:
        logging.getLogger("rvlf").warning("warning: %s", warning)
    if args.sentence:
        for scores in batch_sentence_scores(hyps, refs, lang):
            print(json.dumps(_rounded(scores)))
    else:
        print(json.dumps(_rounded(corpus_scores(hyps, refs, lang))))
    return 0


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    """Scores to 4 decimals (0-100 scale): float noise such as 100.00000000000004 is not a digit of the score."""
    return {k: round(v, 4) for k, v in scores.items()}
