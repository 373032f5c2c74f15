"""Progress of a long loop: a tqdm bar on a terminal, one log line every few percent elsewhere.

A tqdm bar redraws its line with carriage returns several times a second; written to a file
(`make demo > log`, a CI log) that is hundreds of kilobytes of redraws. When stderr is not a
terminal, `progress` returns `LineProgress` instead: one line per `every` of the total (5% by
default) and one at the end, e.g. `rvlf demo: sft step 119/340 (35%), 2.10 s/step, loss=1.234`.

Every line a command prints about its work starts `rvlf COMMAND: ` (`command_line`), as its log
records do (`rvlf.cli.CommandLines`): `rvlf.cli.main` names the running command (`set_command`).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

# the running `rvlf COMMAND` (set by rvlf.cli.main); None when rvlf is used as a library
_command: str | None = None
# units counted as an ordinal ("step 3/10"); any other unit is a count of things ("3/10 videos")
ORDINAL_UNITS = frozenset({"step", "epoch", "batch", "update", "round"})


def set_command(name: str | None) -> None:
    """Name the running command (`rvlf.cli.main`; None when it ends): lines then start `rvlf NAME: `."""
    global _command
    _command = name


def command_line(text: str, part: str = "", *, default: str | None = None) -> str:
    """One line of the running command: `rvlf COMMAND: [PART ]TEXT`, with `default` as the command
    when none runs (the Python API) and no prefix when there is neither. `part` (a stage or a step,
    e.g. `sft`, `demo corpus`) loses a first word that repeats the command: `rvlf sft: step 3/10`,
    `rvlf demo: corpus 5/96 videos`, not `rvlf sft: sft step 3/10`."""
    name = _command or default
    if part and name:
        first, _, rest = part.partition(" ")
        part = rest if first == name else part
    text = f"{part} {text}" if part else text
    return f"rvlf {name}: {text}" if name else text


def count_text(n: int, total: int, unit: str) -> str:
    """`n` of `total` in English: `step 3/10` for a unit in `ORDINAL_UNITS`, else `3/10 videos` (the
    unit in the plural; tqdm's default unit `it` reads `items`); without a total `step 3`, `3 videos`."""
    of = f"/{total}" if total else ""
    if unit in ORDINAL_UNITS:
        return f"{unit} {n}{of}"
    return f"{n}{of} {plural(unit)}"


def plural(unit: str) -> str:
    """`video` -> `videos`, `it` -> `items`, `batch` -> `batches`, `s` -> `s` (an English plural of a unit)."""
    if unit in ("it", ""):
        return "items"
    if len(unit) < 2 or unit.endswith("s"):
        return unit
    return unit + ("es" if unit.endswith(("ch", "sh", "x")) else "s")


def progress(total: int, *, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0,
             every: float = 0.05, stream: TextIO | None = None):
    """A progress object with tqdm's `update(n)`, `set_postfix(**kw)`, `set_postfix_str(s)`,
    `write(s)` and `close()`: a tqdm bar when `stream` (default stderr) is a terminal, else a
    `LineProgress`; with `enabled=False`, one that shows nothing (tqdm's `disable=True`). `desc` names
    the loop (a stage: `sft`), shown after the command's `rvlf COMMAND: ` (`command_line`)."""
    stream = stream or sys.stderr
    if enabled and is_terminal(stream):
        from tqdm.auto import tqdm  # deferred on purpose: only a terminal draws a bar

        label = command_line("", desc).rstrip(": ") or None  # `rvlf demo: sft` (tqdm adds the ": ")
        return tqdm(total=total, initial=initial, desc=label, unit=unit, file=stream, dynamic_ncols=True)
    return LineProgress(total, desc=desc, unit=unit, initial=initial, every=every, stream=stream, enabled=enabled)


def is_terminal(stream) -> bool:
    """Whether `stream` is an interactive terminal (False for files, pipes and captured streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False


class LineProgress:
    """Progress for a log: a line each time another `every` of `total` is done (and at the end)."""

    def __init__(self, total: int, *, desc: str, unit: str = "it", initial: int = 0, every: float = 0.05,
                 stream: TextIO | None = None, enabled: bool = True):
        self.total, self.n, self.desc, self.unit = max(int(total), 0), int(initial), desc, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.step = max(1, round(self.total * every)) if self.total else 1
        self.next = (self.n // self.step + 1) * self.step
        self.postfix = ""
        self.start, self.start_n = time.perf_counter(), self.n
        self.closed = False
        self.printed = self.n  # the count of the last line written

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.next or (self.total and self.n >= self.total and self.printed < self.total):
            self.next = (self.n // self.step + 1) * self.step
            self._line()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def write(self, s: str) -> None:
        """Print `s` as one line, shown or not (as `tqdm.write`)."""
        print(s, file=self.stream, flush=True)

    def close(self) -> None:
        """The last line, if the loop stopped between two (e.g. at `--max-steps`)."""
        if not self.closed and self.n != self.printed and self.n > self.start_n:
            self._line()
        self.closed = True

    def _line(self) -> None:
        if not self.enabled:
            return
        done = self.n - self.start_n
        rate = (time.perf_counter() - self.start) / done if done > 0 else 0.0
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        text = f"{count_text(self.n, self.total, self.unit)}{share}, {rate:.2f} s/{self.unit}"
        line = command_line(text + (f", {self.postfix}" if self.postfix else ""), self.desc)
        print(line, file=self.stream, flush=True)
        self.printed = self.n
