"""`rvlf score`: BLEU-1..4, ROUGE-L, chrF and chrF++ of hypothesis and reference files (docs/evaluation.md)."""

from __future__ import annotations

import json
import logging
import sys

from rvlf.errors import InputFileError, RvlfError
from rvlf.text.files import read_lines, read_sentences
from rvlf.text.script import SLRT, TOKENIZE  # rvlf.text.metrics (sacrebleu) is imported by run: --help stays quick

__all__ = ["read_lines", "register", "run", "add_tokenize_arg"]

TOKENIZE_HELP = ("tokens: slrt (default: the paper's SLRT/signjoey protocol, whitespace tokens, Chinese by "
                 "character) or sacrebleu's own 13a, intl, zh, char, none (ja-mecab, ko-mecab with sacrebleu[ja]/[ko]; "
                 "spm/flores need a download and are refused), computed by sacrebleu with its default BLEU "
                 "(docs/evaluation.md)")


def add_tokenize_arg(p) -> None:
    """`--tokenize` (sacrebleu's flag name), shared by score, compare, evaluate and report."""
    p.add_argument("--tokenize", default=SLRT, metavar="{" + ",".join(TOKENIZE) + "}", help=TOKENIZE_HELP)


def register(sub) -> None:
    p = sub.add_parser("score", help="BLEU-1..4, ROUGE-L, chrF and chrF++ of hypothesis and reference files",
                       description="Score hypotheses against references with the SLRT/signjoey protocol "
                                   "(0-100; see docs/evaluation.md), plus sacrebleu chrF and chrF++ on the "
                                   "protocol's tokens, or with one of sacrebleu's tokenisations (--tokenize). "
                                   "Files are UTF-8 (BOM allowed), one sentence a line. Prints JSON, scores "
                                   "rounded to 4 decimals; the protocol and sacrebleu signature go to stderr.")
    p.add_argument("--hyp", required=True, help="hypothesis file")
    p.add_argument("--ref", required=True, help="reference file (same number of lines)")
    p.add_argument("--lang", required=True, metavar="LANG",
                   help="language code: zh is scored by character under slrt; de, en or any other by whitespace tokens")
    add_tokenize_arg(p)
    p.add_argument("--sentence", action="store_true", help="one JSON object a line instead of corpus scores")
    p.set_defaults(func=run)


def run(args) -> int:
    # sacrebleu: only when scoring (`rvlf --help` imports this module)
    from rvlf.text.metrics import batch_sentence_scores, check_lang, check_scoring, check_tokenize, corpus_scores, signature

    lang = check_lang(args.lang)
    tok = getattr(args, "tokenize", SLRT)
    if tok != SLRT:
        check_tokenize(tok)
    hyps, refs = read_sentences(args.hyp), read_sentences(args.ref)
    if len(hyps) != len(refs):
        raise RvlfError(f"{args.hyp} has {len(hyps)} lines but {args.ref} has {len(refs)}")
    if not refs:
        raise InputFileError(args.ref, "no sentences")
    warning = check_scoring(refs, lang, tok, args.ref)  # a wrong --lang/--tokenize scores in the wrong units
    if warning:
        logging.getLogger("rvlf").warning("warning: %s", warning)
    if args.sentence:
        for scores in batch_sentence_scores(hyps, refs, lang, tokenize=tok):
            print(json.dumps(_rounded(scores)))
    else:
        print(json.dumps(_rounded(corpus_scores(hyps, refs, lang, tokenize=tok))))
    # stdout stays the scores alone (scripts parse it); the signature says how they were made
    print(f"signature: {signature(lang, tok)}", file=sys.stderr)
    return 0


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    """Scores to 4 decimals (0-100 scale): float noise such as 100.00000000000004 is not a digit of the score."""
    return {k: round(v, 4) for k, v in scores.items()}
