"""IO errors lose nothing (issue #28, report case C4): a full disk, a read-only file system or a
denied write while saving a checkpoint, an export, a feature file, results or translations is one
line naming the path and the OS error (non-zero exit); the last good file or folder stays as it
was and nothing partial is left under the final name. The real-disk tests use a small tmpfs
(skipped where mounting is not permitted); the rest inject the OS error at the write call."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import cli_output, tiny_runs
from rvlf import atomic
from rvlf.errors import WriteError
from rvlf.train import checkpoint as ckpt


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs (a disk that fills up), unmounted afterwards."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(mnt: Path, leave: int) -> None:
    """Eat the free space of `mnt` but `leave` bytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(mnt / "filler.bin", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def _remount_ro(mnt: Path) -> None:
    res = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only: {res.stderr.strip()}")


def _safetensors_enospc():
    from safetensors import SafetensorError

    return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def test_checkpoint_save_that_hits_enospc_names_the_folder_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    """The report's wrapped error: safetensors' `SafetensorError ... (os error 28)`."""
    last = tmp_path / "run" / "last"
    ckpt.save_checkpoint(last, model_state={"w": torch.ones(3)}, trainer_state={"global_step": 1})
    before = _digest(last)

    def full_disk(tensors, path, *a, **k):
        raise _safetensors_enospc()

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    with pytest.raises(WriteError) as info:
        ckpt.save_checkpoint(last, model_state={"w": torch.zeros(3)}, trainer_state={"global_step": 2})
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{last}: cannot write the checkpoint: No space left on device (ENOSPC)")
    assert "previous checkpoint" in line
    assert _digest(last) == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["last"]  # no temporary folder left


def test_a_read_only_checkpoint_folder_is_one_line_too(tmp_path, monkeypatch):
    """Variant the report does not give: EROFS raised by a plain file write (the optimizer JSON)."""
    last = tmp_path / "last"
    ckpt.save_checkpoint(last, model_state={"w": torch.ones(3)}, trainer_state={"global_step": 1})
    before = _digest(last)
    real = Path.write_text

    def read_only(self, *a, **k):
        if self.name == "optimizer.json":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", read_only)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1).state_dict()
    with pytest.raises(WriteError, match=r"last: cannot write the checkpoint: Read-only file system \(EROFS\)"):
        ckpt.save_checkpoint(last, model_state={"w": torch.zeros(3)}, trainer_state={"global_step": 2},
                             optimizer_state=opt)
    assert _digest(last) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_export_onto_a_full_disk_is_one_line_and_the_earlier_export_is_unchanged(tmp_path, tmpfs):
    """C4 as the report ran it: `rvlf export` onto a full tmpfs, over an earlier export."""
    _, s1, _ = tiny_runs(tmp_path / "runs")
    model = tmpfs / "model"
    rc, _, err = cli_output("export", s1 / "best", "--out", model)
    assert rc == 0, err
    before = _digest(model)
    _fill(tmpfs, leave=64 * 1024)
    rc, _, err = cli_output("export", s1 / "best", "--out", model)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith(f"rvlf export: error: {model}: cannot write the model folder: "
                               "No space left on device (ENOSPC)")
    assert "internal error" not in err
    assert _digest(model) == before  # the earlier export, byte for byte
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler.bin", "model"]  # no temporary folder left


def test_training_onto_a_full_disk_stops_with_one_line_keeping_the_last_checkpoint(tmp_path, tmpfs):
    """C4's training half: room for one `last/` but not for the swap to the next."""
    from helpers import CHEAP, REPO, TINY_STAGE1, write_toy_corpus

    manifest = write_toy_corpus(tmp_path / "toy", n_train=16, n_dev=4, n_test=4)
    out = tmpfs / "run"
    _fill(tmpfs, leave=2 * 1024 * 1024)
    rc, _, err = cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", out,
                            "--max-steps", "3", f"data.root={manifest}", "train.batch_size=4",
                            "train.save_every_steps=1", *CHEAP, *TINY_STAGE1)
    lines = [x for x in err.strip().splitlines() if x.startswith("rvlf pretrain:")]
    assert rc == 1, err
    assert len(lines) == 1 and "No space left on device (ENOSPC)" in lines[0], err
    assert f"{out / 'last'}: cannot write the checkpoint" in lines[0]
    assert "internal error" not in err
    state = ckpt.load_trainer_state(out / "last")  # the last good checkpoint, complete and loadable
    assert state["global_step"] == 1
    ckpt.load_weights(out / "last" / ckpt.MODEL_FILE)
    assert not list(out.glob(".last.tmp-*")) and not (out / "results.json").exists()


def test_feature_results_and_translation_writes_on_a_read_only_disk(tmpfs):
    """Variant: `rvlf extract`'s feature file, results.json and the translations file on EROFS: the
    old file stays, no temporary file is left."""
    from rvlf.data.features import load_video_features, save_video_features
    from rvlf.train.common import write_json, write_translations

    feat = tmpfs / "v.npz"
    kp = np.ones((4, 77, 3), np.float32)
    save_video_features(feat, kp, None, {"source": "v.mp4"})
    write_json(tmpfs / "results.json", {"bleu4": 1.0})
    write_translations(tmpfs / "t.tsv", ["a"], ["hyp"], ["ref"])
    before = {p.name: p.read_bytes() for p in tmpfs.iterdir()}
    _remount_ro(tmpfs)
    with pytest.raises(WriteError, match=rf"^{feat}: cannot write the feature file: Read-only file system \(EROFS\)"):
        save_video_features(feat, kp * 2, None, {"source": "v.mp4"})
    with pytest.raises(WriteError, match=r"results.json: cannot write the results: Read-only file system"):
        write_json(tmpfs / "results.json", {"bleu4": 2.0})
    with pytest.raises(WriteError, match=r"t.tsv: cannot write the translations: Read-only file system"):
        write_translations(tmpfs / "t.tsv", ["a"], ["other"], ["ref"])
    assert {p.name: p.read_bytes() for p in tmpfs.iterdir()} == before
    assert np.array_equal(load_video_features(feat)["keypoints"], kp)


# the renames that are not `rvlf.atomic`'s: a replaced run moved aside (`run_folder.remove_run`);
# every file write and every folder swap (checkpoints, exports, the run's base_lm/) goes through rvlf.atomic
FOLDER_RENAMES = {"atomic.py", "train/run_folder.py"}


def test_every_file_write_by_rename_goes_through_rvlf_atomic():
    """One atomic-write helper (issue 32): no other module renames a temporary file or folder of its
    own (`os.replace`, `mkstemp`, `.rename(`)."""
    src = Path(__file__).resolve().parents[1] / "src" / "rvlf"
    found = [f"{p.relative_to(src)}:{n}" for p in sorted(src.rglob("*.py")) if str(p.relative_to(src)) not in FOLDER_RENAMES
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if any(k in line for k in ("os.replace(", "mkstemp(", ".rename("))]
    assert found == []


def test_the_learning_curve_and_the_analyze_figure_on_a_read_only_disk(tmpfs):
    """Variant: the figures (`plots.plot_learning_curve`, `rvlf analyze`'s histogram) on EROFS: one
    `WriteError` line naming the file, the old figure kept, no temporary file left."""
    from rvlf.commands.analyze import plot_similarity
    from rvlf.train.plots import plot_learning_curve

    metrics = tmpfs / "metrics.jsonl"
    metrics.write_text('{"step": 0, "dev_bleu4": 1.0, "dev_rouge_l": 2.0, "dev_reward": 3.0}\n'
                       '{"step": 5, "dev_bleu4": 2.0, "dev_rouge_l": 3.0, "dev_reward": 4.0}\n')
    plot_learning_curve(metrics, tmpfs / "curve.png")
    sims = {g: np.linspace(0.5, 1.0, 20) for g in ("body", "face", "hands")}
    plot_similarity(sims, {"face": "DINOv2"}, "t", tmpfs / "sim.png", bins=10)
    before = {p.name: p.read_bytes() for p in tmpfs.iterdir()}
    _remount_ro(tmpfs)
    with pytest.raises(WriteError, match=r"curve.png: cannot write the learning curve: Read-only file system"):
        plot_learning_curve(metrics, tmpfs / "curve.png")
    with pytest.raises(WriteError, match=r"sim.png: cannot write the figure: Read-only file system"):
        plot_similarity(sims, {"face": "DINOv2"}, "t", tmpfs / "sim.png", bins=10)
    assert {p.name: p.read_bytes() for p in tmpfs.iterdir()} == before


def test_a_failed_atomic_write_leaves_no_partial_file(tmp_path):
    """ENOSPC in the middle of writing the temporary file: the destination keeps its old content."""
    target = tmp_path / "report.md"
    target.write_text("old\n")

    def half_then_full(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError, match=r"report.md: cannot write the report: No space left on device \(ENOSPC\)"):
        atomic.write_file(target, half_then_full, what="the report")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


@pytest.mark.parametrize("raised, expected, code", [
    (lambda: _safetensors_enospc(), "rvlf score: error: No space left on device (ENOSPC)", 1),
    (lambda: shutil.Error([("a", "b", "[Errno 28] No space left on device")]),  # copytree's collected error
     "rvlf score: error: No space left on device (ENOSPC)", 1),
    (lambda: OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/out.tsv"),
     "rvlf score: error: /data/out.tsv: Disk quota exceeded (EDQUOT)", 1),
    (lambda: PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/out.tsv"),
     "rvlf score: error: /data/out.tsv: Permission denied (EACCES)", 2),
])
def test_the_cli_never_calls_an_os_error_internal(monkeypatch, raised, expected, code):
    """The last-resort handler: any OS error a command did not turn into a `WriteError` is still one line."""
    import rvlf.commands.score as score

    def boom(args):
        raise raised()

    monkeypatch.setattr(score, "run", boom)
    rc, _, err = cli_output("score", "--hyp", "h.txt", "--ref", "r.txt", "--lang", "en")
    assert (rc, err.strip()) == (code, expected)


# --- folders swapped into place: rvlf.atomic.write_dir / replace_dir ------------------------------

def _folder(path: Path, text: str) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "weights.bin").write_text(text)
    return path


def _read(path: Path) -> str:
    return (path / "sub" / "weights.bin").read_text()


atomic_exchange = atomic.exchange


def test_replace_dir_swaps_in_one_atomic_exchange_where_the_os_has_it(tmp_path, monkeypatch):
    final = _folder(tmp_path / "best", "old")
    tmp = _folder(atomic.make_temp_dir(final), "new")
    probe = [_folder(tmp_path / "a", "a"), _folder(tmp_path / "b", "b")]
    if not atomic.exchange(*probe):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this file system")
    assert (_read(probe[0]), _read(probe[1])) == ("b", "a")  # swapped, both still there
    used = []
    monkeypatch.setattr(atomic, "exchange", lambda a, b: used.append((Path(a), Path(b))) or atomic_exchange(a, b))
    atomic.replace_dir(tmp, final)
    assert used == [(tmp, final)] and _read(final) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "best"]  # the old folder is gone


@pytest.mark.parametrize("old", [None, "best.old"])
def test_replace_dir_without_an_exchange_renames_twice_and_leaves_nothing(tmp_path, monkeypatch, old):
    """The fallback (no renameat2: macOS, some file systems), parking under a temporary name or `old`."""
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    final = _folder(tmp_path / "best", "old")
    for text in ("new", "newer"):
        atomic.write_dir(final, lambda tmp, text=text: _folder(tmp, text), old=old and tmp_path / old)
        assert _read(final) == text
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    atomic.write_dir(tmp_path / "fresh", lambda tmp: _folder(tmp, "first"))  # nothing there yet
    assert _read(tmp_path / "fresh") == "first"
    real, renames = os.replace, []

    def second_rename_fails(src, dst):
        renames.append(src)
        if len(renames) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(WriteError, match=r"best: cannot write the folder: Input/output error \(EIO\); the previous"):
        atomic.write_dir(final, lambda tmp: _folder(tmp, "lost"), old=old and tmp_path / old)
    assert _read(final) == "newer" and sorted(p.name for p in tmp_path.iterdir()) == ["best", "fresh"]


KILLED_SWAP = """
import os, signal, sys
from pathlib import Path
from rvlf import atomic
atomic.exchange = lambda a, b: False
renames = []
def second_rename_kills(src, dst, real=os.replace):
    renames.append(src)
    if len(renames) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = second_rename_kills
old = Path(sys.argv[2]) if len(sys.argv) > 2 else None
atomic.write_dir(sys.argv[1], lambda tmp: (tmp / "which").write_text("new"), old=old)
"""


def _killed_between_renames(final: Path, *old: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_SWAP, str(final), *map(str, old)],
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src")),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert not final.exists()  # the old folder parked, the new one not yet in place


def test_a_kill_between_the_two_renames_is_recovered_by_the_reader_or_cleaned_by_the_next_writer(tmp_path):
    """A real SIGKILL between the fallback's renames. With `old` (checkpoints' `<dir>.old`) the reader
    puts the previous folder back; without, the parked folder has the dead writer's temporary name and
    the next writer removes it with the new folder's temporary copy."""
    final, old = tmp_path / "last", tmp_path / "last.old"
    final.mkdir()
    (final / "which").write_text("previous")
    _killed_between_renames(final, old)
    assert (old / "which").read_text() == "previous"
    assert atomic.restore_parked(old, final) and (final / "which").read_text() == "previous"
    assert not old.exists() and len(list(tmp_path.glob(".last.tmp-*"))) == 1  # the killed write's new folder
    _killed_between_renames(final, old)
    atomic.write_dir(final, lambda tmp: (tmp / "which").write_text("next"), old=old)  # the writer, not a reader, next
    assert (final / "which").read_text() == "next" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]

    export = tmp_path / "exp"
    export.mkdir()
    (export / "which").write_text("previous")
    _killed_between_renames(export)
    assert sorted(p.name.endswith(".old") for p in tmp_path.glob(".exp.tmp-*")) == [False, True]
    atomic.write_dir(export, lambda tmp: (tmp / "which").write_text("next"))
    assert (export / "which").read_text() == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "last"]


def test_a_file_where_the_folder_should_be_is_one_line_and_left_alone(tmp_path):
    """Variant: `last` (or an export) is a file: ENOTDIR as a `WriteError` naming it, the file kept,
    no temporary folder left."""
    last = tmp_path / "last"
    last.write_text("my notes\n")
    with pytest.raises(WriteError, match=rf"^{last}: cannot write the checkpoint: Not a directory \(ENOTDIR\); "
                                         "the previous checkpoint there, if any, is kept$"):
        ckpt.save_checkpoint(last, model_state={"w": torch.ones(2)}, trainer_state={"global_step": 1})
    assert last.read_text() == "my notes\n" and [p.name for p in tmp_path.iterdir()] == ["last"]
    with pytest.raises(NotADirectoryError):
        atomic.replace_dir(_folder(tmp_path / "new", "x"), last)
    assert last.read_text() == "my notes\n"


def test_the_runs_base_lm_copy_is_swapped_in_whole_or_not_at_all(tmp_path):
    """`write_base_lm` (was: remove the old copy, then rename an untagged `.tmp`): a failed copy keeps
    the old one, a good copy replaces it, through a pid-tagged temporary folder."""
    from rvlf.train.sign_lm import write_base_lm

    src, target = _folder(tmp_path / "src", "new LM"), _folder(tmp_path / "run" / "base_lm", "old LM")
    _folder(tmp_path / "run" / "base_lm.tmp", "left by an older rvlf")
    seen = []

    def full_disk(folder: Path) -> None:
        seen.append(folder.name)
        shutil.copytree(src, folder)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError, match=r"base_lm: cannot write the run's copy of the base LM: No space left"):
        write_base_lm(target, full_disk, keep_existing=False)
    assert seen[0].startswith(atomic.temp_prefix("base_lm"))
    assert _read(target) == "old LM" and sorted(p.name for p in target.parent.iterdir()) == ["base_lm"]
    write_base_lm(target, lambda folder: shutil.copytree(src, folder), keep_existing=False)  # as GRPO copies SFT's
    assert _read(target) == "new LM" and sorted(p.name for p in target.parent.iterdir()) == ["base_lm"]
