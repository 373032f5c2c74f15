"""`rvlf analyze`: feature analyses (adjacent-frame similarity, paper Figs. 5 and 7)"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("analyze", help="feature analyses (adjacent-frame similarity, paper Figs. 5 and 7)")
    p.set_defaults(func=not_ready("analyze", "issue 4"))
