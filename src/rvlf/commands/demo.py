"""`rvlf demo`: all three stages on the embedded demo corpus (CPU, no downloads)."""

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="run all three stages on the bundled demo corpus (CPU, no downloads)",
                       description="Generate the embedded synthetic corpus, run stage 1, pretrain a tiny Qwen3 on "
                                   "text of the corpus language (the stand-in for Qwen3's pretraining; no dev or test "
                                   "sign sequence), run SLT-SFT on it and SLT-GRPO, with small models on CPU, and print a "
                                   "paper-style results table (test split, beam 5). "
                                   "Run again with the same --out, it keeps the stages that finished with the same "
                                   "config, code and torch thread count (an interrupted demo starts again at the stage "
                                   "it was in). "
                                   "See docs/demo-corpus.md for what the corpus is and is not.")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo, with --long runs/demo-long)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the corpus, the initialisations, data order and GRPO sampling (default 0)")
    p.add_argument("--quick", action="store_true", help="a tiny corpus and one epoch a stage (smoke test)")
    p.add_argument("--long", action="store_true",
                   help="the longer schedules: SLT-GRPO the paper's 2 epochs (500 steps, two policy updates per sampled "
                        "batch) instead of 50 steps, stage 1 "
                        "28 epochs instead of 12, SFT 12 epochs at a constant lr (GRPO's decaying 2 epochs replace "
                        "the default SFT's final lr decay), the base LM 20,000 sentences instead of 10,000; same "
                        "corpus and models, 15 to 25 minutes on two CPU threads (the default demo: about 8); its "
                        "table shows GRPO's gain with a 95%% interval (docs/demo-grpo.md). Run again with the same "
                        "--out, it keeps the stages that finished there")
    p.add_argument("--ablations", nargs="*", metavar="NAME", default=None,
                   choices=["no_pretrain", "no_dino", "face_only", "hand_only"],
                   help="after (or instead of re-running) the demo, run SLT-SFT ablations (Tables 5-6): "
                        "no_pretrain no_dino face_only hand_only (default with no names: no_pretrain no_dino)")
    p.set_defaults(func=run)


def run(args) -> int:
    # torch, sacrebleu (transformers, peft once a stage runs): only when the demo runs, not for `rvlf --help`
    from rvlf.runs.demo import DemoSize, run_ablations, run_demo

    size = DemoSize.quick() if args.quick else DemoSize()
    if args.long:
        size = size.with_long()
    out = args.out or ("runs/demo-long" if args.long else "runs/demo")
    progress = True
    if not (Path(out) / "results.json").is_file() or args.ablations is None:
        run_demo(out, size=size, seed=args.seed, progress=progress)
    if args.ablations is not None:
        which = tuple(args.ablations) or ("no_pretrain", "no_dino")
        run_ablations(out, which=which, size=size, seed=args.seed, progress=progress)
    return 0
