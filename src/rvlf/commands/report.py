"""`rvlf report`: paper-style tables from finished runs"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("report", help="paper-style tables from finished runs")
    p.set_defaults(func=not_ready("report", "issue 7"))
