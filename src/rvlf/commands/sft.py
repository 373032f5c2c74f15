"""`rvlf sft`: stage 2, SLT-SFT (Sec. 3.2)."""

from rvlf.commands._common import add_training_args, not_ready


def register(sub) -> None:
    p = sub.add_parser("sft", help="stage 2: SLT-SFT, instruction tuning of the LLM with LoRA (Sec. 3.2)")
    add_training_args(p)
    p.set_defaults(func=not_ready("sft", "issue 5"))
