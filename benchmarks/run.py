"""`make bench`: time every stage of rvlf and write a Markdown report (benchmarks/README.md).

    .venv/bin/python benchmarks/run.py --out benchmarks/results.md          # full (what `make bench` runs)
    .venv/bin/python benchmarks/run.py --quick --only scoring,generation     # smoke test, printed

Each figure is the median of the timed runs (default: 1 warm-up, then 5), with their min and max.
Rates are computed per run (work / seconds), so "min" is the slowest run. This is a script, not a test:
nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`python benchmarks/run.py`): the checkout holds `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Report, Section, Sizes, matmul_peak, run_item  # noqa: E402 (sets HF offline first)
from benchmarks.items import BENCHES, OPTIONAL, load  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="write the Markdown report here (default: print it)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 warm-up, 2 runs, smaller sizes")
    parser.add_argument("--only", default=None, metavar="NAME[,NAME]", help=f"a subset of: {', '.join(BENCHES)} (sft, grpo: one half of llm)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per figure (default 5, --quick 2)")
    parser.add_argument("--llm-size", choices=("paper", "reduced"), default="paper",
                        help="item 4 at Qwen3-0.6B's full shape and 300 sign tokens (paper), or 4 layers and 64 "
                             "sign tokens (reduced: a loaded or slow machine)")
    parser.add_argument("--append", action="store_true",
                        help="append this run's sections (with its own machine, date and load) to --out")
    parser.add_argument("--analysis", default=str(Path(__file__).with_name("analysis.md")),
                        help="Markdown appended as the 'Against the hardware' section, if the file exists")
    args = parser.parse_args(argv)
    names = list(BENCHES) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES and n not in OPTIONAL]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join([*BENCHES, *OPTIONAL])}")
    sizes = Sizes(1, args.runs or (2 if args.quick else 5), args.quick, args.llm_size == "reduced")

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    command = ["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
    report = Report(args.out, sizes, command, append=args.append, analysis=args.analysis)
    peak, peak_row = matmul_peak(sizes)
    ctx = {"peak": peak}
    report.sections.append(Section("0. Float32 matmul peak (measured now)", [peak_row]))
    for name in names:
        report.sections.append(run_item(name, load(name), sizes, ctx))
        if args.out:  # after every section, so a stopped run still leaves what it measured
            report.write(final=name == names[-1])
    if args.out:
        print(f"[bench] wrote {args.out}", file=sys.stderr)
    else:
        print(report.write(final=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
