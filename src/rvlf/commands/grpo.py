"""`rvlf grpo`: stage 3, SLT-GRPO (Sec. 3.3)."""

from rvlf.commands._common import add_training_args, not_ready


def register(sub) -> None:
    p = sub.add_parser("grpo", help="stage 3: SLT-GRPO, reinforcement fine-tuning (Sec. 3.3)")
    add_training_args(p)
    p.set_defaults(func=not_ready("grpo", "issue 6"))
