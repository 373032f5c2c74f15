"""`rvlf grpo`: stage 3, SLT-GRPO (Sec. 3.3)."""

import json

from rvlf.commands._common import add_training_args, is_main_process, run_folder_args, training_overrides


def register(sub) -> None:
    p = sub.add_parser("grpo", help="stage 3: SLT-GRPO, reinforcement fine-tuning (Sec. 3.3)",
                       description="Stage 3: merge the SFT LoRA, add a new one, and optimise it with GRPO on the "
                                   "BLEU-4 + ROUGE-L reward (Eqs. 15-19). --init is the SFT checkpoint.")
    add_training_args(p)
    p.add_argument("--reward", choices=["bleu", "rouge", "both"], default=None,
                   help="reward of Eq. 15 (Table 7 ablation; default: the config's grpo.reward, both)")
    p.set_defaults(func=run)


def run(args) -> int:
    # PyYAML, pydantic: only when the config is checked (`rvlf --help` imports this module)
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import GRPOConfig

    overrides = training_overrides(args) + ([f"grpo.reward={args.reward}"] if args.reward else [])
    cfg = load_config(GRPOConfig, args.config, overrides)
    # torch, transformers, peft (~9 s without bytecode): after the config is checked, so a config error is quick
    from rvlf.train.grpo import run as run_grpo

    summary = run_grpo(cfg, args.out, max_steps=args.max_steps, **run_folder_args(args), init=args.init)
    if is_main_process():
        print(json.dumps({k: summary[k] for k in ("baseline_dev", "dev", "test", "best_bleu4", "steps") if k in summary}))
    return 0
