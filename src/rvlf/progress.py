"""Progress of a long loop: a tqdm bar on a terminal, one log line every few percent elsewhere.

A tqdm bar redraws its line with carriage returns several times a second; written to a file
(`make demo > log`, a CI log) that is hundreds of kilobytes of redraws. When stderr is not a
terminal, `progress` returns `LineProgress` instead: one line per `every` of the total (5% by
default) and one at the end, e.g. `[sft] 35% (119/340 step), 2.1 s/step, loss=1.234`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def progress(total: int, *, desc: str, unit: str = "it", enabled: bool = True, initial: int = 0,
             every: float = 0.05, stream: TextIO | None = None):
    """A progress object with tqdm's `update(n)`, `set_postfix(**kw)`, `set_postfix_str(s)`,
    `write(s)` and `close()`: a tqdm bar when `stream` (default stderr) is a terminal, else a
    `LineProgress`; with `enabled=False`, one that shows nothing (tqdm's `disable=True`)."""
    stream = stream or sys.stderr
    if enabled and is_terminal(stream):
        from tqdm.auto import tqdm  # deferred on purpose: only a terminal draws a bar

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, dynamic_ncols=True)
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
        share = f"{100 * self.n / self.total:.0f}% " if self.total else ""
        of = f"/{self.total}" if self.total else ""
        line = f"[{self.desc}] {share}({self.n}{of} {self.unit}), {rate:.2f} s/{self.unit}"
        print(line + (f", {self.postfix}" if self.postfix else ""), file=self.stream, flush=True)
        self.printed = self.n
