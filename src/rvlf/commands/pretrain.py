"""`rvlf pretrain`: stage 1, visual-language pre-training (Sec. 3.1)."""

from rvlf.commands._common import add_training_args, not_ready


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="stage 1: visual-language pre-training (Sec. 3.1)")
    add_training_args(p)
    p.set_defaults(func=not_ready("pretrain", "issue 3"))
