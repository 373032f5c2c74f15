"""`rvlf sft`: stage 2, SLT-SFT (Sec. 3.2)."""

import json

from rvlf.commands._common import add_training_args, is_main_process, run_folder_args, training_overrides
from rvlf.errors import RvlfError


def register(sub) -> None:
    p = sub.add_parser("sft", help="stage 2: SLT-SFT, instruction tuning of the LLM with LoRA (Sec. 3.2)",
                       description="Stage 2: fuse the stage-1 skeleton features with DINOv2 face/hand features "
                                   "(Eq. 12), project them into a causal LM (Eq. 13) and train LoRA on the target "
                                   "tokens (Eq. 14). --init is the stage-1 checkpoint.")
    add_training_args(p)
    abl = p.add_argument_group("ablations (paper Tables 5 and 6)")
    abl.add_argument("--no-pretrain", action="store_true", help="random skeleton encoder instead of stage 1's")
    abl.add_argument("--no-dino", action="store_true", help="skeleton features only, no DINOv2 face/hand features")
    abl.add_argument("--face-only", action="store_true", help="DINOv2 face features only")
    abl.add_argument("--hand-only", action="store_true", help="DINOv2 hand features only")
    p.add_argument("--train-encoder", action="store_true", help="also train the skeleton encoder (frozen by default)")
    p.set_defaults(func=run)


def ablation_overrides(args) -> list[str]:
    if sum([args.no_dino, args.face_only, args.hand_only]) > 1:
        raise RvlfError("--no-dino, --face-only and --hand-only exclude each other")
    out = []
    if args.no_pretrain:
        out.append("pretrained_encoder=false")
    if args.no_dino:
        out += ["fusion.use_face=false", "fusion.use_hand=false"]
    if args.face_only:
        out.append("fusion.use_hand=false")
    if args.hand_only:
        out.append("fusion.use_face=false")
    if args.train_encoder:
        out.append("train_encoder=true")
    return out


def run(args) -> int:
    # PyYAML, pydantic: only when the config is checked (`rvlf --help` imports this module)
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import SFTConfig

    cfg = load_config(SFTConfig, args.config, training_overrides(args) + ablation_overrides(args))
    # torch, transformers, peft (~9 s without bytecode): after the config is checked, so a config error is quick
    from rvlf.train.sft import run as run_sft

    summary = run_sft(cfg, args.out, max_steps=args.max_steps, **run_folder_args(args), init=args.init)
    if is_main_process():
        print(json.dumps({k: summary[k] for k in ("setting", "dev", "test", "best_bleu4", "steps") if k in summary}))
    return 0
