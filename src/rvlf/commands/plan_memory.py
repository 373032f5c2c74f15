"""`rvlf plan-memory`: memory needed for a training step, from the configs alone"""

import json

from rvlf.errors import RvlfError

# Kept in step with rvlf.runs.memory_plan (not imported here: it pulls in torch, and `rvlf --help` should be quick).
DEFAULT_PROMPT_TOKENS = 60
DEFAULT_TEXT_VOCAB = 16000


def register(sub) -> None:
    p = sub.add_parser("plan-memory", help="memory needed for a training step, from the configs alone",
                       description="Parameter, gradient, optimizer-state and activation memory of one training "
                                   "step of the stage in --config (its `stage:` key), counted on meta-device models "
                                   "(no weights are read), and whether it fits NUM_GPUS cards of GPU_GIB under DDP, "
                                   "ZeRO-2 and ZeRO-3/FSDP. See docs/scaling.md.")
    p.add_argument("--config", required=True, help="stage YAML (configs/paper/<dataset>/{pretrain,sft,grpo}.yaml)")
    p.add_argument("--gpu-gib", type=float, default=32.0, help="memory of one GPU in GiB (default 32, a V100)")
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs (processes) training together")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                   help="default: the config's train.mixed_precision")
    p.add_argument("--grad-checkpointing", action="store_true", help="keep only each layer's input for backward")
    p.add_argument("--prompt-tokens", type=int, default=DEFAULT_PROMPT_TOKENS,
                   help=f"chat-template tokens around the sign features (default {DEFAULT_PROMPT_TOKENS})")
    p.add_argument("--target-tokens", type=int, default=None,
                   help="target / completion tokens (default: data.max_text_tokens, GRPO: grpo.max_new_tokens)")
    p.add_argument("--text-vocab", type=int, default=DEFAULT_TEXT_VOCAB,
                   help="vocabulary of the stage-1 text tokenizer or of a tiny LM (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.batch_size=2")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.num_gpus < 1 or args.gpu_gib <= 0:
        raise RvlfError("--num-gpus must be >= 1 and --gpu-gib > 0")
    overrides = list(args.overrides)
    if args.mixed_precision:
        overrides.append(f"train.mixed_precision='{args.mixed_precision}'")  # quoted: YAML reads bare no as false
    if args.grad_checkpointing:
        overrides.append("train.grad_checkpointing=true")
    # PyYAML and pydantic (rvlf.config via rvlf.train.recipe_configs; no torch): only for `rvlf plan-memory`
    # itself, not for `rvlf --help`
    from rvlf.train.recipe_configs import load_stage_file

    stage, cfg = load_stage_file(args.config, overrides)  # missing, empty or invalid: one line, before torch
    # torch and transformers (the plan counts meta-device models): once the config is read and checked,
    # so that a missing, empty or invalid file is one line without their seconds of start-up
    from rvlf.runs.memory_plan import format_table, plan_config

    p = plan_config(stage, cfg, prompt_tokens=args.prompt_tokens, target_tokens=args.target_tokens,
                    vocab_size=args.text_vocab)
    if args.json:
        print(json.dumps(p.to_dict(args.gpu_gib, args.num_gpus), indent=2))
    else:
        print(format_table(p, args.gpu_gib, args.num_gpus))
    return 0

