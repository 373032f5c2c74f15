"""`rvlf report`: the paper's tables (1-7 layouts) from finished runs."""

import sys
from pathlib import Path

from rvlf import atomic
from rvlf.commands.score import add_tokenize_arg


def register(sub) -> None:
    p = sub.add_parser("report", help="paper-style tables from finished runs",
                       description="Builds the main results table (Tables 1-4 layout), the framework ablation "
                                   "(Table 5), the DINOv2 parts (Table 6) and the reward choices (Table 7) from run "
                                   "folders; each row links to its run folder and config. Beside the paper's columns: "
                                   "chrF, chrF++ and each row's difference to its baseline row (SLT-SFT vs stage 1, "
                                   "SLT-GRPO vs SLT-SFT, ablations vs the full model) with a 95% interval from paired "
                                   "bootstrap resampling of the runs' test_translations.tsv; (n.s.) marks a difference "
                                   "that is not significant (p >= 0.05). Each table names its protocol's sacrebleu "
                                   "signature. A run that crashed (no or broken results.json) is left out and a "
                                   "missing column shows as -; both are listed at the end of the report and on "
                                   "stderr, and the report of the other runs is still written with exit status 0 "
                                   "(--strict: exit 1 after writing it). Exit 2 when no run can be read. Prints "
                                   "where it wrote the report and how many runs it holds; --out - prints the report "
                                   "itself instead of writing a file.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (the --out of pretrain/sft/grpo)")
    p.add_argument("--out", default="report.md",
                   help="Markdown file to write (default: report.md); - prints the report to stdout, writing nothing")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the differences (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    add_tokenize_arg(p)
    p.add_argument("--strict", action="store_true",
                   help="exit 1 (after writing the report) when a run was left out or is incomplete")
    p.set_defaults(func=run)


def run(args) -> int:
    # sacrebleu, PyYAML, pydantic: only when a report is built (`rvlf --help` imports this module)
    from rvlf.runs.report import build_report

    problems: list[str] = []
    counts: dict = {}
    to_stdout = args.out == "-"  # run links are then relative to the current folder
    text = build_report(args.runs, "report.md" if to_stdout else args.out, resamples=args.resamples, seed=args.seed,
                        tokenize=args.tokenize, problems=problems, counts=counts)
    out = Path(args.out)
    if to_stdout:
        print(text)
    else:  # like the field's report writers: the file holds the report, the terminal says where it is
        atomic.write_text(out, text, what="the report")
        more = "".join(f", {counts[k]} {what}" for k, what in (("left_out", "left out"), ("incomplete", "incomplete"))
                       if counts.get(k))
        print(f"rvlf report: wrote {out}: {counts['runs']} run(s) of {', '.join(counts['datasets'])}{more}")
    for line in problems:
        print(f"rvlf report: warning: {line}", file=sys.stderr)
    if problems:
        where = "above" if to_stdout else f"in {out}"
        print(f"rvlf report: {len(problems)} run(s) left out or incomplete; the report of the rest is {where}",
              file=sys.stderr)
    return 1 if problems and args.strict else 0
