"""The script of a text: Chinese characters or not, which decides the protocol's units.

Light on purpose (no sacrebleu): the dataset readers and checks import it. The protocol scores
Chinese by character and German/English by whitespace tokens (`rvlf.text.metrics`), so a text in
the wrong script for the run's language is scored in the wrong units, silently, unless caught here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rvlf.errors import InputFileError

LANGS = ("zh", "de", "en")  # the paper's languages (training data); scoring takes any language code
# tokenisations of `--tokenize` (rvlf.text.metrics): here, free of sacrebleu, so `--help` stays quick
SLRT = "slrt"  # the paper's protocol (SLRT/signjoey): the default tokenisation
SACREBLEU_TOKENIZE = ("13a", "intl", "zh", "char", "none")  # sacrebleu's, offline with sacrebleu alone
MECAB_TOKENIZE = {"ja-mecab": "ja", "ko-mecab": "ko"}  # sacrebleu's, with `pip install sacrebleu[ja]` / `[ko]`
DOWNLOADING_TOKENIZE = ("spm", "flores101", "flores200", "spBLEU-1K")  # fetch a SentencePiece model at first use
TOKENIZE = (SLRT, *SACREBLEU_TOKENIZE, *MECAB_TOKENIZE)
CHAR_LEVEL = frozenset({"zh"})  # languages scored (and tokenized) by character
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")  # CJK ideographs (unified, extension A, compatibility)


def has_chinese(text: str) -> bool:
    """True if `text` holds a CJK ideograph (Chinese characters)."""
    return _CJK.search(text) is not None


def script_mismatch(texts: Sequence[str], lang: str) -> dict | None:
    """Whether the script of `texts` contradicts `lang`: the check behind the protocol's units.

    The protocol only differs by script: Chinese is scored by character, German and English by
    whitespace tokens (de and en are not told apart here). Returns None when at least half of the
    non-empty texts fit `lang`, else `{"wrong": n, "of": m, "example": text, "segmented": bool}`:
    `wrong` of the `m` texts hold Chinese characters under de/en, or none under zh; `segmented`:
    most Chinese texts contain spaces (word-segmented Chinese, scored by words on purpose?)."""
    texts = [t for t in texts if t.strip()]
    chinese = [t for t in texts if has_chinese(t)]
    wrong = [t for t in texts if not has_chinese(t)] if lang in CHAR_LEVEL else chinese
    if not texts or 2 * len(wrong) <= len(texts):
        return None
    segmented = bool(chinese) and 2 * sum(1 for t in chinese if len(t.split()) > 1) > len(chinese)
    return {"wrong": len(wrong), "of": len(texts), "example": wrong[0].strip()[:40], "segmented": segmented}


def script_problem(texts: Sequence[str], lang: str, what: str = "texts") -> str | None:
    """`script_mismatch` as a phrase for a one-line message (None if the texts fit `lang`)."""
    m = script_mismatch(texts, lang)
    if m is None:
        return None
    if lang in CHAR_LEVEL:
        return (f"{m['wrong']} of {m['of']} {what} hold no Chinese character (e.g. {m['example']!r}), but "
                f"{lang!r} scores by character: give the texts' language (de or en)")
    return (f"{m['wrong']} of {m['of']} {what} are Chinese (e.g. {m['example']!r}), but {lang!r} scores by "
            "whitespace tokens: give zh, which scores Chinese by character")


def check_scoring_lang(refs: Sequence[str], lang: str, where: str) -> str | None:
    """Refuse a `--lang` that would score `refs` (read from `where`) in the wrong units; `rvlf score`
    and `rvlf compare` call it.

    - `zh` on references that are mostly not Chinese: InputFileError. Character-level scoring of
      German or English is never the protocol.
    - `de`/`en` on mostly Chinese references that are not word-segmented: InputFileError (each
      sentence would be a single token, BLEU 0 or 100).
    - `de`/`en` on word-segmented Chinese: returned as a warning (word-level BLEU of segmented
      Chinese is reported by some papers; the protocol scores Chinese by character).
    Returns None when the references fit `lang`."""
    m = script_mismatch(refs, lang)
    if m is None:
        return None
    if lang in CHAR_LEVEL:
        raise InputFileError(where, f"{m['wrong']} of {m['of']} references hold no Chinese character (e.g. "
                                    f"{m['example']!r}), but --lang {lang} scores by character: give their "
                                    "language (--lang de or en)")
    if not m["segmented"]:
        raise InputFileError(where, f"{m['wrong']} of {m['of']} references are Chinese without spaces (e.g. "
                                    f"{m['example']!r}), but --lang {lang} scores whitespace tokens (a sentence would "
                                    "be one token): give --lang zh, which scores Chinese by character")
    return (f"{where}: {m['wrong']} of {m['of']} references are word-segmented Chinese (e.g. {m['example']!r}): "
            f"scored by words as --lang {lang} asks; the protocol scores Chinese by character (--lang zh)")
