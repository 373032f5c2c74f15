"""`rvlf data`: dataset checks"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("data", help="dataset checks")
    p.set_defaults(func=not_ready("data", "issue 2"))
