"""`rvlf translate`: translate videos, frame folders or keypoint files with a checkpoint"""

from rvlf.commands._common import not_ready


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate videos, frame folders or keypoint files with a checkpoint")
    p.set_defaults(func=not_ready("translate", "issue 7"))
