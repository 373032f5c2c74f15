"""7. `rvlf translate` end to end on the fixture video with a tiny SFT checkpoint. See benchmarks/README.md."""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import REPO, VIDEO, Row, Section, Sizes, timed


def run(sizes: Sizes, ctx: dict) -> Section:
    from rvlf.cli import main
    from rvlf.data.features import save_tiny_dinov2
    from rvlf.data.video import iter_frames, video_fps

    sys.path.insert(0, str(REPO / "tests"))
    from helpers import tiny_runs  # noqa: E402

    sec = Section("7. `rvlf translate` end to end on the fixture video")
    frames = sum(1 for _ in iter_frames(VIDEO))
    seconds_of_video = frames / video_fps(VIDEO)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            try:  # the tests' tiny stage-1 and SFT runs (16-dim DINOv2 features)
                _, _, sft = tiny_runs(root, sft_steps=2)
            except AssertionError:
                raise RuntimeError("building the tiny checkpoint failed:\n" + quiet.getvalue()[-2000:]) from None
            dino = save_tiny_dinov2(root / "dino16", hidden_size=16, intermediate_size=32)
        argv = ["translate", str(VIDEO), "--checkpoint", str(sft / "last"), "--dino", str(dino)]

        def run() -> None:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = main(argv)
            if rc != 0 or not out.getvalue().startswith(VIDEO.stem):
                raise RuntimeError(f"rvlf translate failed (rc {rc}): {out.getvalue()[-500:]}")

        s = timed(run, sizes)
    sec.rows.append(Row("`rvlf translate signer_58frames.mp4`", s, "s"))
    sec.rows.append(Row("seconds per second of video", [x / seconds_of_video for x in s], "s/s",
                        f"{frames} frames = {seconds_of_video:.2f} s of video"))
    sec.notes.append(
        "`rvlf.cli.main(['translate', VIDEO, '--checkpoint', SFT/last, '--dino', TINY_DINO])` in this process (the "
        "interpreter start and first imports are not counted; each run loads the checkpoint, runs MediaPipe "
        "Holistic over every frame, crops, DINOv2, the sign LM and beam search of width 5). The checkpoint is a "
        "2-step SFT run of the tests' tiny models (`tests/helpers.py: tiny_runs`: the demo's 2-layer 128-wide Qwen3, a 32-wide skeleton encoder) and the "
        "DINOv2 is 1 layer, 16 wide, so the time is almost all decoding and MediaPipe: a real checkpoint adds "
        "DINOv2-base (section 2) and the LLM's beam search.")
    return sec
