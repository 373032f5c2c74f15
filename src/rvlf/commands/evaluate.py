"""`rvlf evaluate`: score a checkpoint on a split (beam search 5)"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a split (beam search 5)")
    p.set_defaults(func=not_ready("evaluate", "issues 3 and 5"))
