"""`rvlf plan-memory`: memory needed for a training step, from the configs alone"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("plan-memory", help="memory needed for a training step, from the configs alone")
    p.set_defaults(func=not_ready("plan-memory", "issue 8"))
