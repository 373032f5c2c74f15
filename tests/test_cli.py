"""The CLI contract: every sub-command exists, errors are one line without a traceback."""

import subprocess
import sys

import pytest

from rvlf.cli import COMMANDS, main


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name.replace("_", "-"), "--help"])
        assert exc.value.code == 0
        assert "usage: rvlf" in capsys.readouterr().out


def test_python_dash_m_is_the_same_cli():
    out = subprocess.run([sys.executable, "-m", "rvlf", "--help"], capture_output=True, text=True, check=True)
    for name in ("demo", "extract", "pretrain", "sft", "grpo", "evaluate", "translate", "score"):
        assert name in out.stdout


def test_training_commands_take_the_shared_flags(capsys):
    for name in ("pretrain", "sft", "grpo"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        for flag in ("--config", "--out", "--max-steps", "--resume", "--init", "key=value"):
            assert flag in text, (name, flag)


def test_overrides_may_follow_options(monkeypatch):
    seen = {}

    def fake_run(args):
        seen["overrides"] = args.overrides
        seen["max_steps"] = args.max_steps
        return 0

    import rvlf.commands.pretrain as pretrain

    monkeypatch.setattr(pretrain, "run", fake_run)
    assert main(["pretrain", "--config", "c.yaml", "--out", "o", "data.root=x", "--max-steps", "3",
                 "train.lr=0.5", "pretrained_encoder=false"]) == 0
    assert seen == {"overrides": ["data.root=x", "train.lr=0.5", "pretrained_encoder=false"], "max_steps": 3}
    with pytest.raises(SystemExit):
        main(["pretrain", "--config", "c.yaml", "--out", "o", "data.root=x", "--max-steps", "3", "stray"])


@pytest.mark.parametrize("argv", [
    ["translate", "x.mp4", "--checkpoint", "ckpt", "--num-beams", "-3"],
    ["translate", "x.mp4", "--checkpoint", "ckpt", "--num-beams", "0"],
    ["evaluate", "--checkpoint", "ckpt", "--num-beams", "-1"],
    ["evaluate", "--checkpoint", "ckpt", "--batch-size", "0"],
    ["evaluate", "--checkpoint", "ckpt", "--max-samples", "-2"],
    ["extract", "x.mp4", "--out", "o", "--batch-size", "0"],
    ["app", "--checkpoint", "ckpt", "--num-beams", "0"],
])
def test_counts_out_of_range_are_one_usage_line(argv, capsys):
    """A beam width or batch size below 1 used to reach torch ('internal error: RuntimeError: Trying to
    create tensor with negative dimension') or be taken silently as the default."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert "must be >= " in err.strip().splitlines()[-1]


def test_a_closed_pipe_on_stdout_is_no_internal_error(tmp_path):
    """`rvlf score ... | head -0`: the reader is gone before rvlf writes; no traceback, no "internal error"."""
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("a b c d\n" * 2000)
    ref.write_text("a b c d\n" * 2000)
    proc = subprocess.Popen([sys.executable, "-m", "rvlf", "score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en",
                             "--sentence"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head -0` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "internal error" not in err and "Traceback" not in err and "BrokenPipe" not in err
