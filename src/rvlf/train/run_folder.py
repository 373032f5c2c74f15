"""A run folder belongs to one run (`--out` of `rvlf pretrain | sft | grpo`, the demo's stage folders).

`claim(out, stage, cfg, ...)` is what every stage recipe does first, before it reads data or
writes anything:

- **Lock.** The folder is locked for the run's lifetime (`OUT/.rvlf.lock`, an advisory
  `flock` that the kernel drops when the process dies, SIGKILL included). The file holds the
  holder's pid, host, start time and command; a second run into the folder is refused at once,
  naming them. A lock file left by a dead process is taken over with a note. Only the main
  process of a multi-process launch (`RANK` 0) takes it.
- **New run, resume or overwrite.** A folder that holds a run (`last/`, `best/`, `metrics.jsonl`,
  `results.json`) is refused for a new run unless `--resume` (continue it) or `--overwrite`
  (its checkpoints, logs and results are removed first, never mixed with the new run's).
- **Honest resume.** `--resume` compares the new configuration with the run's own
  (`last/config.yaml`). Settings that change what the run computes are refused with the list of
  differences unless `--allow-config-change`; settings that cannot change in a running model
  (architecture, LoRA shape, tokenizer, optimiser type) are refused always; settings that do not
  change the result (`NEUTRAL`) are accepted with a note. What the recipe takes from the
  checkpoint itself (SFT's encoder shape, GRPO's base model) is not compared.

The lock does not guard against two hosts writing one network folder when their `flock` is not
shared (most NFS setups do share it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rvlf import atomic
from rvlf.config import to_dict
from rvlf.errors import RvlfError
from rvlf.train import checkpoint as ckpt

log = logging.getLogger("rvlf.train")

LOCK_FILE = ".rvlf.lock"
# what says "a run was here" (`rvlf.train.loop`, `rvlf.train.common.finish_run`)
RUN_MARKERS = ("last", "last.old", "best", "best.old", "metrics.jsonl", "results.json")
# everything a stage recipe or `rvlf demo` writes into its run folder (removed by --overwrite)
RUN_OUTPUTS = (*RUN_MARKERS, "tensorboard", "test_translations.tsv", "learning_curve.png", "base_lm",
               "demo_stage.json")

# settings that do not change what a run computes: accepted on --resume (the new value is used)
NEUTRAL = ("train.progress", "train.log_every_steps", "train.save_every_steps", "train.eval_every_steps",
           "train.eval_every_epochs", "train.grad_checkpointing", "data.num_workers", "data.preload",
           "cache_encoder_outputs")
# what each stage's resume takes from its own checkpoint, not from the new config: not compared
FROM_CHECKPOINT = {
    "pretrain": (),
    "sft": ("encoder.", "fusion.sign_dim", "fusion.dino_dim"),  # set from the stage-1 encoder and the features
    "grpo": ("encoder.", "fusion.", "sft_llm.", "llm.name_or_path", "llm.tiny", "llm.dtype", "llm.keep_base"),
}
# settings a resumed model cannot take: its weights, adapters, tokenizer or optimiser state have their shape
FIXED = {
    "pretrain": ("model.", "tokenizer.", "train.optimizer"),
    "sft": ("fusion.", "llm.name_or_path", "llm.tiny", "llm.dtype", "llm.keep_base", "llm.lora_", "llm.target_modules",
            "train_encoder", "pretrained_encoder", "train.optimizer"),
    "grpo": ("llm.", "train.optimizer"),
}


class RunFolderError(RvlfError):
    """The run folder is held by another run, or holds a run this command would mix with."""


@dataclass
class Claim:
    """What `claim` found: whether there is a checkpoint to resume, and the accepted config changes
    (`key -> (old, new)`, computing ones only with --allow-config-change)."""

    out: Path
    resume: bool
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    neutral: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    old_config: dict = field(default_factory=dict)


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


# --- the lock ---------------------------------------------------------------------------------

class RunLock:
    """An exclusive, advisory lock on a run folder (`flock` on `OUT/.rvlf.lock`).

    `flock` is released by the kernel when the holder dies (also on SIGKILL), so a lock is never
    stuck; the file's JSON (pid, host, start time, command) names the holder in the refusal, and a
    file whose holder is gone is reported as taken over. On a file system without `flock` the
    holder's pid decides: a live pid on this host (or a holder on another host) holds the folder."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._in_use(holder) from None
            except OSError:  # a file system without flock: the holder's pid, checked on its own host
                holder = _read_holder(fd)
                if _holder_may_live(holder):
                    os.close(fd)
                    raise self._in_use(holder) from None
                break
            except BaseException:
                os.close(fd)
                raise
            try:  # the file may have been removed (released) between our open and flock: try again
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous:
            log.warning("%s: took over the lock of a run that is gone (%s)", self.path.parent, describe(previous))
        me = {"pid": os.getpid(), "host": atomic.host(), "started": dt.datetime.now(dt.timezone.utc)
              .isoformat(timespec="seconds"), "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd

    def _in_use(self, holder: dict) -> RunFolderError:
        elsewhere = holder.get("host") not in (None, atomic.host())
        hint = (f" (if that run is gone, remove {self.path})" if elsewhere else "")
        return RunFolderError(f"{self.path.parent}: in use by another run ({describe(holder)}); wait for it to "
                              f"finish, stop it, or choose another --out{hint}")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding it: a waiter that opened it sees another inode, retries
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder_may_live(holder: dict) -> bool:
    """Without flock: a holder on another host may live; on this host, if its pid does."""
    if not holder or holder.get("pid") == os.getpid():
        return False
    if holder.get("host") != atomic.host():
        return True
    try:
        return atomic.pid_alive(int(holder["pid"]))
    except (KeyError, TypeError, ValueError):
        return False


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(holder: dict) -> str:
    if not holder:
        return "holder unknown"
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
            + (f": {holder['command']}" if holder.get("command") else ""))


# --- what the folder holds --------------------------------------------------------------------

def holds_run(out: Path) -> bool:
    return any((out / name).exists() for name in RUN_MARKERS)


def run_summary(out: Path) -> tuple[str | None, int | None, bool]:
    """(stage, step of the last checkpoint, finished) of the run in `out`, as far as known."""
    stage, step = None, None
    for name in ("last", "last.old", "best"):
        try:
            state = json.loads((out / name / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        stage = stage or state.get("stage")
        if name != "best" and step is None:
            step = state.get("global_step")
    return stage, step, (out / "results.json").is_file()


def _what(out: Path) -> str:
    stage, step, finished = run_summary(out)
    text = f"{_a(stage)} run" if stage else "a run"
    details = [f"last checkpoint at step {step}" if step is not None else "no resumable checkpoint"]
    if finished:
        details.append("finished: results.json")
    return f"{text} ({', '.join(details)})"


def _a(stage: str) -> str:
    """"a pretrain", "an sft", "a grpo"."""
    return f"{'an' if stage.startswith(('a', 'e', 'i', 'o', 'u', 's')) else 'a'} {stage}"


def remove_run(out: Path) -> None:
    """Remove what a run wrote into `out` (RUN_OUTPUTS and its temporary folders); other files stay.
    The entries are first moved into one temporary folder, so a kill mid-way leaves no half run."""
    entries = [out / n for n in RUN_OUTPUTS if (out / n).exists() or (out / n).is_symlink()]
    entries += [p for n in ("last", "best", "base_lm") for p in out.glob(f".{n}.tmp-*") if atomic.is_stale(p)]
    if not entries:
        return
    trash = atomic.make_temp_dir(out / "replaced-run")
    for entry in entries:
        os.replace(entry, trash / entry.name)
    shutil.rmtree(trash, ignore_errors=True)


# --- configuration differences ----------------------------------------------------------------

def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: list(data) if isinstance(data, tuple) else data}


def _matches(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith((".", "_")) and key.startswith(p)) for p in prefixes)


def config_differences(stage: str, old: dict, new: dict) -> tuple[dict, dict, dict]:
    """(computing, neutral, fixed) differences `key -> (old, new)` between a run's stored config and
    a new one, leaving out what the stage's resume takes from its checkpoint."""
    a, b = flatten(_plain(old)), flatten(_plain(new))
    computing, neutral, fixed = {}, {}, {}
    for key in sorted(set(a) | set(b)):
        if key == "stage" or _matches(key, FROM_CHECKPOINT.get(stage, ())):
            continue
        va, vb = a.get(key, "<unset>"), b.get(key, "<unset>")
        if va == vb:
            continue
        if _matches(key, NEUTRAL):
            neutral[key] = (va, vb)
        elif _matches(key, FIXED.get(stage, ())):
            fixed[key] = (va, vb)
        else:
            computing[key] = (va, vb)
    return computing, neutral, fixed


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def format_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}: {_short(o)} -> {_short(n)}" for k, (o, n) in changes.items())


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _stored_config(out: Path) -> tuple[Path, dict]:
    last = ckpt.resolve_checkpoint(out / "last")
    path = last / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise RunFolderError(f"{path}: cannot read the run's configuration ({err}); cannot check --resume") from None
    return path, data


# --- the claim --------------------------------------------------------------------------------

@contextlib.contextmanager
def claim(out: str | Path, stage: str, cfg: Any, *, resume: bool = False, overwrite: bool = False,
          allow_config_change: bool = False) -> Iterator[Claim]:
    """Lock `out` for a `stage` run with config `cfg` and check it may run there (see the module
    docstring); yields a `Claim`. Raises `RunFolderError` (one line) when it may not."""
    out = Path(out)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other (continue the run, or replace it)")
    if allow_config_change and not resume:
        raise RunFolderError("--allow-config-change goes with --resume (it lets a resumed run take new settings)")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder; choose a folder for --out")
    lock = RunLock(out) if is_main_process() else None
    with atomic.reported_write(out, "the run folder"):
        out.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()
    try:
        result = Claim(out, resume=False)
        if overwrite and holds_run(out):
            what = _what(out)
            if lock is not None:
                remove_run(out)
            log.warning("%s: --overwrite: removed %s (its checkpoints, logs and results)", out, what)
        elif resume:
            result = _check_resume(out, stage, to_dict(cfg), allow_config_change, lock is not None)
        elif holds_run(out):
            raise RunFolderError(f"{out}: holds {_what(out)}; continue it with --resume, replace it with --overwrite "
                                 f"(its checkpoints and logs are removed), or choose another --out")
        yield result
    finally:
        if lock is not None:
            lock.release()


def _check_resume(out: Path, stage: str, new: dict, allow: bool, main: bool) -> Claim:
    if not ((out / "last").exists() or (out / "last.old").exists()):
        if holds_run(out):  # killed before its first checkpoint: nothing to continue, nothing worth keeping
            what = _what(out)
            if main:
                remove_run(out)
            log.warning("%s: --resume: %s has no checkpoint to continue from; removed its partial outputs and "
                        "starting from scratch", out, what)
        else:  # a mistyped --out must not train from scratch without a word
            log.warning("%s: --resume: no run there to continue (no checkpoint, no logs); starting a new run", out)
        return Claim(out, resume=False)
    last = ckpt.resolve_checkpoint(out / "last")
    old_stage = ckpt.load_trainer_state(last).get("stage")
    if old_stage and old_stage != stage:
        raise RunFolderError(f"{out}: holds {_a(old_stage)} run, not {_a(stage)} run; --resume continues a run of the "
                             f"same stage (choose another --out)")
    path, old = _stored_config(out)
    computing, neutral, fixed = config_differences(stage, old, new)
    if fixed:
        raise RunFolderError(f"{out}: --resume cannot change {format_changes(fixed)} (the checkpoint's weights, "
                             f"adapters or optimiser state have that shape; {path} has the run's settings); start "
                             f"a new run (another --out, or --overwrite)")
    if computing and not allow:
        raise RunFolderError(f"{out}: --resume with settings that differ from the run's own ({path}): "
                             f"{format_changes(computing)}; resume with the same settings, or add "
                             f"--allow-config-change to continue with the new ones")
    if neutral:
        log.info("%s: resuming with %s (these do not change the result)", out, format_changes(neutral))
    if computing:
        log.warning("%s: --allow-config-change: resuming with %s", out, format_changes(computing))
    return Claim(out, resume=True, changes=computing, neutral=neutral, old_config=old)
