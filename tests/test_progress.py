"""Progress in a log: a line every few percent, never a bar's carriage-return redraws (rvlf.progress)."""

from __future__ import annotations

import io
import re

from rvlf.progress import LineProgress, progress


def test_a_log_gets_a_line_every_five_percent_and_none_of_a_bars_redraws():
    log = io.StringIO()  # not a terminal, as `make demo > log`
    bar = progress(340, desc="sft", unit="step", stream=log)
    assert isinstance(bar, LineProgress)
    for i in range(340):
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)  # as the training loop: this step's loss
        bar.update(1)
        if i == 99:
            bar.write("[sft] step 100: dev BLEU-4 1.00")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    progress_lines = [line for line in lines if "%" in line]
    assert len(progress_lines) == 20  # 17 steps a line (5% of 340): 17, 34, ..., 340
    assert progress_lines[0].startswith("[sft] 5% (17/340 step), ") and "loss=0.059" in progress_lines[0]
    assert re.match(r"\[sft\] 100% \(340/340 step\), \d+\.\d+ s/step, loss=0\.003$", progress_lines[-1])
    assert "[sft] step 100: dev BLEU-4 1.00" in lines
    assert len(log.getvalue()) < 2000  # a tqdm bar writes a redraw per update


def test_resumed_and_stopped_early_and_disabled():
    log = io.StringIO()
    bar = progress(100, desc="grpo", unit="step", initial=37, stream=log)  # --resume from step 37
    for _ in range(10):  # stopped at step 47 (--max-steps)
        bar.update(1)
    bar.close()
    bar.close()
    assert [line.split(" (")[1].split(" ")[0] for line in log.getvalue().splitlines()] == ["40/100", "45/100",
                                                                                           "47/100"]
    quiet = io.StringIO()
    bar = progress(10, desc="x", stream=quiet, enabled=False)
    for _ in range(10):
        bar.update(1)
    bar.write("shown anyway")  # as tqdm.write on a disabled bar: dev score lines still reach the log
    bar.close()
    assert quiet.getvalue() == "shown anyway\n"
