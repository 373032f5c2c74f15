"""A run folder belongs to one run (issue #28, report cases C8, C9, C20): a second process is refused
while a live run holds the folder, naming it; a lock left by a killed run is taken over; a new run
into a folder that holds a run needs --resume or --overwrite (never a mix of two runs); temporary
folders are per process, and only dead processes' are cleaned (checkpoints and exports)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from helpers import CHEAP, REPO, TINY_STAGE1, cli_output, write_toy_corpus
from rvlf import atomic
from rvlf.train import checkpoint as ckpt
from rvlf.train.run_folder import LOCK_FILE, RunFolderError, RunLock


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


HOLD = """
import sys, time
from rvlf.train.run_folder import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding the run folder's lock, as a running training would."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(folder)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def _pretrain(out: Path, manifest: Path, *extra: str):
    return cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", out,
                      f"data.root={manifest}", "train.batch_size=4", "train.log_every_steps=1", *CHEAP, *TINY_STAGE1,
                      *extra)


def test_a_live_run_holds_its_folder_and_a_killed_ones_lock_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    holder = _holder(folder)
    try:
        with pytest.raises(RunFolderError) as info:
            RunLock(folder).acquire()
        line = str(info.value)
        assert line.startswith(f"{folder}: in use by another run (pid {holder.pid} on {atomic.host()}, started 20")
        assert "\n" not in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / LOCK_FILE).is_file()  # SIGKILL: nobody removed it, but the kernel dropped the flock
    with caplog.at_level(logging.WARNING, logger="rvlf.train"):
        lock = RunLock(folder)
        lock.acquire()
    assert f"took over the lock of a run that is gone (pid {holder.pid} on {atomic.host()}" in caplog.text
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (folder / LOCK_FILE).exists()  # released cleanly: nothing left


@pytest.mark.parametrize("command", ["pretrain", "sft"])
def test_a_second_run_into_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path, command):
    """C9 (two launches into one --out); the variant: another stage's command into the held folder."""
    manifest = write_toy_corpus(tmp_path / "toy", n_train=8, n_dev=2, n_test=2)
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        t0 = time.monotonic()
        rc, _, err = cli_output(command, "--config", REPO / f"configs/demo/{command}.yaml", "--out", out,
                                "--init", tmp_path / "nowhere", f"data.root={manifest}", "--max-steps", "1")
        assert time.monotonic() - t0 < 30  # before any data or model is loaded
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{out}: in use by another run (pid {holder.pid} on {atomic.host()}" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written by the refused run


def test_a_new_run_never_replaces_or_mixes_with_a_finished_one(tmp_path, caplog):
    """C8: a finished run's best/ and results.json are kept; --overwrite replaces the run whole."""
    manifest = write_toy_corpus(tmp_path / "toy", n_train=16, n_dev=4, n_test=4)
    out = tmp_path / "run"
    rc, _, err = _pretrain(out, manifest, "--max-steps", "3")
    assert rc == 0, err
    kept = {**_digest(out / "best"), **_digest(out / "results.json"), **_digest(out / "metrics.jsonl")}

    rc, _, err = _pretrain(out, manifest, "--max-steps", "1", "train.lr=1e-9", "train.seed=5")
    assert rc == 2
    assert err.strip() == (f"rvlf pretrain: error: {out}: holds a pretrain run (last checkpoint at step 3, finished: "
                           "results.json); continue it with --resume, replace it with --overwrite (its checkpoints "
                           "and logs are removed), or choose another --out")
    # variant: another stage into it, and --resume of another stage
    rc, _, err = cli_output("sft", "--config", REPO / "configs/demo/sft.yaml", "--out", out, "--init", out / "best",
                            f"data.root={manifest}")
    assert rc == 2 and "holds a pretrain run (last checkpoint at step 3" in err
    rc, _, err = cli_output("sft", "--config", REPO / "configs/demo/sft.yaml", "--out", out, "--init", out / "best",
                            f"data.root={manifest}", "--resume")
    assert rc == 2 and f"{out}: holds a pretrain run, not an sft run" in err
    assert {**_digest(out / "best"), **_digest(out / "results.json"), **_digest(out / "metrics.jsonl")} == kept

    _temp(out, "base_lm", _dead_pid())  # a killed SFT run's half copy of its base LM: part of the run too
    with caplog.at_level(logging.WARNING, logger="rvlf.train"):
        rc, _, err = _pretrain(out, manifest, "--max-steps", "2", "--overwrite", "train.seed=5")
    assert rc == 0, err
    assert f"{out}: --overwrite: removed a pretrain run (last checkpoint at step 3, finished: results.json)" in caplog.text
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [1, 2]  # the new run only
    assert ckpt.load_trainer_state(out / "last")["global_step"] == 2
    assert json.loads((out / "results.json").read_text())["steps"] == 2
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # lock released, no temp left


def test_flags_that_exclude_each_other(tmp_path):
    rc, _, err = cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", tmp_path / "r",
                            "--resume", "--overwrite")
    assert rc == 2 and "--resume and --overwrite exclude each other" in err
    rc, _, err = cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", tmp_path / "r",
                            "--allow-config-change")
    assert rc == 2 and "--allow-config-change goes with --resume" in err


def _temp(parent: Path, name: str, pid: int, host: str | None = None) -> Path:
    path = parent / f".{name}.tmp-{pid}@{host or atomic.host()}-abc123"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("half\n")
    return path


def test_a_checkpoint_save_removes_only_dead_processes_temporary_folders(tmp_path):
    """C9's last point: a save never deletes another live process's save in progress."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine_live = _temp(tmp_path, "last", live.pid)
        other_host = _temp(tmp_path, "last", _dead_pid(), host="elsewhere")  # cannot tell: left alone
        dead = _temp(tmp_path, "last", _dead_pid())
        legacy = tmp_path / ".last.tmp-x1y2z3"  # from an rvlf before the pid tag
        legacy.mkdir()
        ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.ones(2)}, trainer_state={"global_step": 1})
        assert mine_live.is_dir() and other_host.is_dir()
        assert not dead.exists() and not legacy.exists()
    finally:
        live.kill()
        live.wait()
    ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.ones(2)}, trainer_state={"global_step": 2})
    assert not mine_live.exists()  # its process is gone now


KILLED_EXPORT = """
import os, signal, sys
from rvlf.inference.model_folder import save_exported
from rvlf.inference.loading import load_stage
stage, _, cfg = load_stage(sys.argv[1])
def die(tmp):
    os.kill(os.getpid(), signal.SIGKILL)
save_exported(stage, cfg, sys.argv[2], source=sys.argv[1], extra=die)
"""


def test_an_export_killed_mid_write_leaves_nothing_that_a_later_export_does_not_clean(tmp_path):
    """C20: `rvlf export` killed (SIGKILL) while writing over an earlier export, then exported again."""
    from helpers import tiny_runs

    _, s1, _ = tiny_runs(tmp_path / "runs")
    exp = tmp_path / "exp"
    rc, _, err = cli_output("export", s1 / "best", "--out", exp)
    assert rc == 0, err
    before = _digest(exp)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_EXPORT), str(s1 / "best"), str(exp)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    left = list(tmp_path.glob(".exp.tmp-*"))
    assert len(left) == 1 and (left[0] / "config.yaml").is_file()  # the killed write's temporary folder
    assert _digest(exp) == before  # the earlier export is whole
    rc, _, err = cli_output("export", s1 / "best", "--out", exp)
    assert rc == 0, err
    assert not list(tmp_path.glob(".exp.tmp-*"))
    from rvlf.inference.api import SignTranslator

    SignTranslator.from_pretrained(exp).save_pretrained(exp)  # the API's save cleans as well
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "runs"]


def test_without_flock_the_holders_pid_decides(tmp_path, monkeypatch):
    """Variant: a file system without `flock` (ENOLCK): a live holder's pid still refuses, a dead one is taken over."""
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    folder = tmp_path / "run"
    folder.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": live.pid, "host": atomic.host(), "started": "2026-12-06T07:00:00+00:00"}
        (folder / LOCK_FILE).write_text(json.dumps(holder))
        with pytest.raises(RunFolderError, match=rf"in use by another run \(pid {live.pid} on {atomic.host()}"):
            RunLock(folder).acquire()
        (folder / LOCK_FILE).write_text(json.dumps({**holder, "host": "other-node"}))
        with pytest.raises(RunFolderError, match=r"on other-node, .*if that run is gone, remove .*\.rvlf\.lock"):
            RunLock(folder).acquire()
    finally:
        live.kill()
        live.wait()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": live.pid, "host": atomic.host(), "started": "x"}))
    lock = RunLock(folder)
    lock.acquire()  # its pid is gone
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
