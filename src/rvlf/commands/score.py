"""`rvlf score`: BLEU-1..4 and ROUGE-L of hypothesis and reference files"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("score", help="BLEU-1..4 and ROUGE-L of hypothesis and reference files")
    p.set_defaults(func=not_ready("score", "issue 2"))
