"""The `rvlf` command (also `python -m rvlf`).

Each sub-command lives in its own module under `rvlf.commands` and exposes
`register(subparsers)`; this file only wires them together and turns errors into one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import warnings

from rvlf import __version__
from rvlf.atomic import describe, os_error_of
from rvlf.errors import RvlfError
from rvlf.progress import command_line, set_command

OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=")

# Sub-command modules, in the order `rvlf --help` lists them.
COMMANDS = [
    "demo",
    "extract",
    "pretrain",
    "sft",
    "grpo",
    "evaluate",
    "translate",
    "export",
    "app",
    "score",
    "compare",
    "data",
    "analyze",
    "report",
    "plan_memory",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvlf",
        description="RVLF: gloss-free sign language translation (pre-training, SLT-SFT, SLT-GRPO).",
        epilog="Run `rvlf COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"rvlf {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"rvlf.commands.{name}")
        module.register(sub)
    return parser


def quiet_libraries(debug: bool) -> None:
    """Our own progress bars and one-line errors only: no per-file loading bars or library chatter."""
    if debug:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient.checkpointing.*")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("httpx", "httpcore"):  # one INFO line per request (Gradio's calls to its own page in `rvlf app`)
        logging.getLogger(name).setLevel(logging.WARNING)
    if "transformers" in sys.modules:  # already imported (e.g. in tests): switch it off directly
        # transformers: only when something has already imported it; the CLI's start-up never does
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


class CommandLines(logging.Formatter):
    """Log lines as `rvlf COMMAND: message` (`rvlf.progress.command_line`, the running command that
    `main` names), like the lines a command prints itself (its warnings, notes and errors): one prefix
    per command on stderr. A message that names another part of rvlf first (`rvlf data: ...`, logged
    while `rvlf evaluate` reads its split) gets the command's name instead, so no line of one command
    starts with another's."""

    _OTHER = re.compile(r"^rvlf [a-z_-]+: ")

    def __init__(self):
        super().__init__("%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return command_line(self._OTHER.sub("", super().format(record), count=1))


def os_error_line(err: BaseException) -> str | None:
    """One line for an OS error that no command turned into an `RvlfError`: the path when the error
    names one, the OS's words and the errno name (also for an OS error safetensors wraps in its
    `SafetensorError "... (os error 28)"`); None for anything else."""
    os_err = os_error_of(err)
    if os_err is None:
        return None
    path = getattr(err, "filename", None) or getattr(os_err, "filename", None)
    return (f"{path}: " if path else "") + describe(os_err)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("RVLF_DEBUG") == "1"
    quiet_libraries(debug)
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    parser = build_parser()
    # `key=value` overrides may come anywhere, also after options (argparse takes one run of positionals)
    args, extra = parser.parse_known_args(argv)
    if extra:
        stray = [t for t in extra if not OVERRIDE.match(t)]
        if stray or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
        args.overrides = list(args.overrides) + extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.debug = debug
    set_command(args.command)  # log, progress and step lines start `rvlf COMMAND: ` (rvlf.progress.command_line)
    for handler in logging.getLogger().handlers:  # basicConfig's stderr handler (pytest's own are subclasses)
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(CommandLines())
    try:
        rc = args.func(args)
        return int(rc or 0)
    except RvlfError as err:
        if debug:
            raise
        print(f"rvlf {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"rvlf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`rvlf compare --json | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit would raise again
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    except Exception as err:  # noqa: BLE001 - last line of defence, one line unless --debug
        if debug:
            raise
        line = os_error_line(err)
        if line is not None:  # the environment said no (disk full, read-only, permission, missing file)
            print(f"rvlf {args.command}: error: {line}", file=sys.stderr)
            return 2 if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)) else 1
        print(
            f"rvlf {args.command}: internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        set_command(None)


if __name__ == "__main__":
    raise SystemExit(main())
