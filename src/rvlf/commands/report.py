"""`rvlf report`: the paper's tables (1-7 layouts) from finished runs."""


def register(sub) -> None:
    p = sub.add_parser("report", help="paper-style tables from finished runs",
                       description="Builds the main results table (Tables 1-4 layout), the framework ablation "
                                   "(Table 5), the DINOv2 parts (Table 6) and the reward choices (Table 7) from run "
                                   "folders; each row links to its run folder and config. Beside the paper's columns: "
                                   "chrF, chrF++ and each row's difference to its baseline row (SLT-SFT vs stage 1, "
                                   "SLT-GRPO vs SLT-SFT, ablations vs the full model) with a 95% interval from paired "
                                   "bootstrap resampling of the runs' test_translations.tsv; (n.s.) marks a difference "
                                   "that is not significant (p >= 0.05).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (the --out of pretrain/sft/grpo)")
    p.add_argument("--out", default="report.md", help="Markdown file to write (default: report.md)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the differences (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from rvlf import atomic
    from rvlf.report import build_report

    text = build_report(args.runs, args.out, resamples=args.resamples, seed=args.seed)
    atomic.write_text(Path(args.out), text, what="the report")
    print(text)
    return 0
