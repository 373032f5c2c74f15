"""`rvlf pretrain`: stage 1, visual-language pre-training (Sec. 3.1)."""

import json

from rvlf.commands._common import add_training_args, is_main_process, run_folder_args, training_overrides


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="stage 1: visual-language pre-training (Sec. 3.1)",
                       description="Stage 1: skeleton encoder + mBART-style text encoder/decoder trained with "
                                   "the fine-grained contrastive loss and translation cross-entropy (Eqs. 3-11).")
    add_training_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # PyYAML, pydantic: only when the config is checked (`rvlf --help` imports this module)
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import PretrainConfig

    cfg = load_config(PretrainConfig, args.config, training_overrides(args))
    # torch, transformers, peft (~9 s without bytecode): after the config is checked, so a config error is quick
    from rvlf.train.pretrain import run as run_pretrain

    summary = run_pretrain(cfg, args.out, max_steps=args.max_steps, **run_folder_args(args), init=args.init)
    if is_main_process():
        print(json.dumps({k: summary[k] for k in ("dev", "test", "best_bleu4", "steps") if k in summary}))
    return 0
