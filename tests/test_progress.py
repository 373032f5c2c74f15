"""Progress in a log: a line every few percent, never a bar's carriage-return redraws (rvlf.progress)."""

from __future__ import annotations

import io
import re

from rvlf.progress import LineProgress, command_line, count_text, progress, set_command


def test_a_log_gets_a_line_every_five_percent_and_none_of_a_bars_redraws():
    log = io.StringIO()  # not a terminal, as `make demo > log`
    bar = progress(340, desc="sft", unit="step", stream=log)
    assert isinstance(bar, LineProgress)
    for i in range(340):
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)  # as the training loop: this step's loss
        bar.update(1)
        if i == 99:
            bar.write(command_line("step 100: dev BLEU-4 1.00", "sft"))
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    progress_lines = [line for line in lines if "%" in line]
    assert len(progress_lines) == 20  # 17 steps a line (5% of 340): 17, 34, ..., 340
    assert progress_lines[0].startswith("sft step 17/340 (5%), ") and "loss=0.059" in progress_lines[0]
    assert re.match(r"sft step 340/340 \(100%\), \d+\.\d+ s/step, loss=0\.003$", progress_lines[-1])
    assert "sft step 100: dev BLEU-4 1.00" in lines
    assert len(log.getvalue()) < 2000  # a tqdm bar writes a redraw per update


def test_resumed_and_stopped_early_and_disabled():
    log = io.StringIO()
    bar = progress(100, desc="grpo", unit="step", initial=37, stream=log)  # --resume from step 37
    for _ in range(10):  # stopped at step 47 (--max-steps)
        bar.update(1)
    bar.close()
    bar.close()
    assert [line.split(" (")[0] for line in log.getvalue().splitlines()] == ["grpo step 40/100", "grpo step 45/100",
                                                                             "grpo step 47/100"]
    quiet = io.StringIO()
    bar = progress(10, desc="x", stream=quiet, enabled=False)
    for _ in range(10):
        bar.update(1)
    bar.write("shown anyway")  # as tqdm.write on a disabled bar: dev score lines still reach the log
    bar.close()
    assert quiet.getvalue() == "shown anyway\n"


def test_a_command_s_lines_start_with_its_name_and_count_in_english():
    """Under `rvlf COMMAND` every progress and step line starts `rvlf COMMAND: `; a stage named like the
    command is not said twice; counts read as English (`step 1/2`, `96/96 videos`)."""
    log = io.StringIO()
    set_command("demo")
    try:
        bar = progress(2, desc="pretrain", unit="step", stream=log)
        bar.update(2)
        bar.write(command_line("step 2: dev BLEU-4 1.00", "pretrain"))
        videos = progress(96, desc="demo corpus", unit="video", stream=log, every=1.0)
        videos.update(96)
        set_command("sft")  # `rvlf sft`: its stage `sft` is not repeated
        progress(4, desc="sft", unit="step", stream=log, every=1.0).update(4)
    finally:
        set_command(None)
    lines = log.getvalue().splitlines()
    assert re.match(r"rvlf demo: pretrain step 2/2 \(100%\), \d+\.\d+ s/step$", lines[0])
    assert lines[1] == "rvlf demo: pretrain step 2: dev BLEU-4 1.00"
    assert re.match(r"rvlf demo: corpus 96/96 videos \(100%\), \d+\.\d+ s/video$", lines[2])
    assert re.match(r"rvlf sft: step 4/4 \(100%\), ", lines[3])
    assert command_line("3 files", "scan", default="data") == "rvlf data: scan 3 files"  # the Python API's default
    # the variant: units without a total, tqdm's default unit and a plural ending in -es
    assert (count_text(3, 0, "step"), count_text(3, 0, "it"), count_text(2, 5, "batch")) == (
        "step 3", "3 items", "batch 2/5")
    assert count_text(7, 9, "sentence") == "7/9 sentences"
