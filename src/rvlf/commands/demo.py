"""`rvlf demo`: all three stages on the embedded corpus (placeholder until issue 7 lands)."""

import sys


def register(sub) -> None:
    p = sub.add_parser("demo", help="run all three stages on the bundled demo corpus (CPU, no downloads)")
    p.add_argument("--out", default="runs/demo", help="run directory")
    p.set_defaults(func=run)


def run(args) -> int:
    print("rvlf demo: placeholder - the end-to-end demo lands with issue 7; nothing was run.", file=sys.stderr)
    return 0
