"""Crash-safe runs: SIGKILL + `--resume` reaches the uninterrupted run's parameters, a kill never
leaves a half-written `last/`, and a NaN loss stops the run keeping the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
import torch

from helpers import REPO, write_toy_corpus
from rvlf.train import checkpoint as ckpt

# 32 train samples, batch 4: 8 steps an epoch, 24 in all; dropout 0.1 so that the RNG restore is exercised.
ARGS = ["model.dropout=0.1", "model.encoder.dropout=0.1", "train.epochs=3", "train.batch_size=4", "train.save_every_steps=1", "train.eval_every_steps=1000",
        "data.dev_max_samples=4", "train.num_beams=1", "train.max_new_tokens=8", "train.progress=false",
        "train.log_every_steps=1"]
TOTAL = 24
KILL_AT = 10  # epoch 1, batch 2: mid-epoch, after an epoch boundary


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def _pretrain(out: Path, manifest: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rvlf", "pretrain", "--config", "configs/demo/pretrain.yaml", "--out", str(out),
            f"data.root={manifest}", *ARGS, *extra]


def _step(run: Path) -> int:
    try:
        return json.loads((run / "last" / "trainer_state.json").read_text())["global_step"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("batching", ["shuffled", "grouped by length"])
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, batching):
    from rvlf.config import load_config
    from rvlf.train.recipe_configs import PretrainConfig

    grouped = (f"train.group_by_length={batching == 'grouped by length'}".lower(),)
    cfg = load_config(PretrainConfig, REPO / "configs/demo/pretrain.yaml", [a for a in ARGS if "dropout" in a])
    assert cfg.model.dropout > 0 and cfg.model.encoder.dropout > 0  # the RNG restore is exercised
    manifest = write_toy_corpus(tmp_path / "toy")
    full, killed = tmp_path / "full", tmp_path / "killed"
    kw = dict(cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    uninterrupted = subprocess.Popen(_pretrain(full, manifest, *grouped), **kw)
    victim = subprocess.Popen(_pretrain(killed, manifest, *grouped), **kw)
    try:
        deadline = time.monotonic() + 240
        while _step(killed) < KILL_AT and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read()[-2000:]
    at_kill = _step(killed)
    assert KILL_AT <= at_kill < TOTAL, "the run was not killed mid-way"

    # whatever the moment of the kill, last/ is a complete checkpoint
    last = ckpt.resolve_checkpoint(killed / "last")
    state = ckpt.load_trainer_state(last)
    assert state["batch_in_epoch"] == at_kill % 8 and state["epoch"] == at_kill // 8
    for name in ("model.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors", "config.yaml"):
        assert (last / name).is_file(), name
    ckpt.load_weights(last / ckpt.MODEL_FILE)
    assert {p.name for p in killed.iterdir() if p.name.startswith(".")} <= {
        ".rvlf.lock", *(p.name for p in killed.glob(".last.tmp-*"))}  # the dead run's lock, a temp folder (never read)

    resumed = subprocess.run(_pretrain(killed, manifest, *grouped, "--resume"), cwd=REPO, env=_env(), capture_output=True,
                             text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {killed / 'last'} at step {at_kill}" in resumed.stderr
    assert uninterrupted.wait(timeout=240) == 0, uninterrupted.stderr.read()[-2000:]
    assert not list(killed.glob(".last.tmp-*"))  # the next save cleaned any stale temp folder
    assert not (killed / ".rvlf.lock").exists()  # the resumed run took the dead run's lock over and released it

    a = ckpt.load_weights(full / "last" / ckpt.MODEL_FILE)
    b = ckpt.load_weights(killed / "last" / ckpt.MODEL_FILE)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), k
    assert ckpt.load_trainer_state(killed / "last")["global_step"] == TOTAL
    # the resumed run's log has each step once, and the same losses as the uninterrupted run
    losses = [[(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if "loss" in r] for run in (full, killed)]
    assert [s for s, _ in losses[1]] == list(range(1, TOTAL + 1))
    assert [s for s, _ in losses[0]] == list(range(1, TOTAL + 1))
    assert [v for _, v in losses[0]] == pytest.approx([v for _, v in losses[1]], rel=1e-4)


KILL_MID_WRITE = """
import os, signal, sys, torch
from rvlf.train import checkpoint as ckpt
out = sys.argv[1]
ckpt.save_checkpoint(out + "/last", model_state={"w": torch.ones(3)}, trainer_state={"global_step": 1},
                     optimizer_state=None)
def die(tmp):
    (tmp / "half.bin").write_bytes(b"x" * 100)
    os.kill(os.getpid(), signal.SIGKILL)
ckpt.save_checkpoint(out + "/last", model_state={"w": torch.zeros(3)}, trainer_state={"global_step": 2}, extra=die)
"""


def test_kill_mid_write_leaves_previous_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_MID_WRITE), str(tmp_path)], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stale = list(tmp_path.glob(".last.tmp-*"))
    assert len(stale) == 1 and (stale[0] / "half.bin").is_file()
    last = ckpt.resolve_checkpoint(tmp_path / "last")
    assert ckpt.load_trainer_state(last)["global_step"] == 1
    assert torch.equal(ckpt.load_weights(last / ckpt.MODEL_FILE)["w"], torch.ones(3))
    assert ckpt.resolve_checkpoint(tmp_path) == tmp_path / "last"  # a run folder resolves to its complete last/
    ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.full((3,), 2.0)}, trainer_state={"global_step": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert ckpt.load_trainer_state(tmp_path / "last")["global_step"] == 3


def test_resume_restores_every_process_rng(tmp_path):
    torch.manual_seed(5)
    states = []
    for _ in range(2):  # two "processes"
        states.append(ckpt.rng_state())
        torch.rand(7)
    ckpt.save_checkpoint(tmp_path / "last", model_state={"w": torch.ones(1)}, trainer_state={"global_step": 1},
                         rng_states=states)
    trainer_state = ckpt.load_trainer_state(tmp_path / "last")
    for rank, (tensors, _) in enumerate(states):
        torch.set_rng_state(tensors["torch"])
        expected = torch.rand(4)
        torch.rand(100)
        assert ckpt.restore_rng(tmp_path / "last", trainer_state, rank)
        assert torch.equal(torch.rand(4), expected)
    assert not ckpt.restore_rng(tmp_path / "last", trainer_state, rank=2)  # none saved for a third process


def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    from rvlf import cli
    from rvlf.train.vlp_stage import PretrainStage

    manifest = write_toy_corpus(tmp_path / "toy", n_train=16, n_dev=4, n_test=4)
    original = PretrainStage.train_step
    steps = []

    def diverging(self, batch, step):
        steps.append(len(steps))
        if len(steps) <= 2:  # one batch a step (no accumulation)
            return original(self, batch, step)
        loss = sum(p.sum() for p in step.model.parameters()) * float("nan")
        step.optimize(loss)
        return {"loss": float(loss)}

    monkeypatch.setattr(PretrainStage, "train_step", diverging)
    out = tmp_path / "run"
    rc = cli.main(["pretrain", "--config", str(REPO / "configs/demo/pretrain.yaml"), "--out", str(out),
                   f"data.root={manifest}", *ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1
    assert err[0].startswith("rvlf pretrain: error: pretrain: loss became nan at step 3")
    assert f"the last good checkpoint (step 2) is kept in {out / 'last'}" in err[0]
    state = ckpt.load_trainer_state(out / "last")
    assert state["global_step"] == 2
    weights = ckpt.load_weights(out / "last" / ckpt.MODEL_FILE)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (out / "results.json").exists()


# --- honest resume (issue #28, report case C7) -----------------------------------------------

def _tiny_pretrain(out: Path, manifest: Path, *extra: str):
    from helpers import CHEAP, TINY_STAGE1, cli_output

    return cli_output("pretrain", "--config", REPO / "configs/demo/pretrain.yaml", "--out", out, f"data.root={manifest}",
                      "train.batch_size=4", "train.epochs=1", "train.scheduler=constant", "train.warmup_epochs=0",
                      "train.log_every_steps=1", "train.eval_every_steps=1000", *CHEAP, *TINY_STAGE1, *extra)


def _folder_digest(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_with_other_settings_is_refused_or_really_takes_them(tmp_path, caplog):
    """C7: a crash mid-epoch (`--max-steps 3` of 4), then `--resume train.lr=0.5 train.batch_size=2`."""
    import logging

    manifest = write_toy_corpus(tmp_path / "toy", n_train=16, n_dev=4, n_test=4)  # 4 steps of 4 an epoch
    out = tmp_path / "run"
    rc, _, err = _tiny_pretrain(out, manifest, "--max-steps", "3")
    assert rc == 0, err
    last = _folder_digest(out / "last")

    rc, _, err = _tiny_pretrain(out, manifest, "--resume", "train.lr=0.5", "train.batch_size=2")
    assert rc == 2
    assert err.strip() == (f"rvlf pretrain: error: {out}: --resume with settings that differ from the run's own "
                           f"({out / 'last' / 'config.yaml'}): train.batch_size: 4 -> 2, train.lr: 0.001 -> 0.5; "
                           "resume with the same settings, or add --allow-config-change to continue with the new ones")
    # variants: another key that changes the result; a shape no resumed model can take, even when allowed
    rc, _, err = _tiny_pretrain(out, manifest, "--resume", "train.seed=3")
    assert rc == 2 and "train.seed: 0 -> 3" in err
    rc, _, err = _tiny_pretrain(out, manifest, "--resume", "--allow-config-change", "model.d_model=64",
                                "model.encoder.d_model=64")  # both: stage 1's widths must agree (config check)
    assert rc == 2 and "--resume cannot change model.d_model: 32 -> 64" in err
    assert _folder_digest(out / "last") == last  # nothing touched

    with caplog.at_level(logging.INFO, logger="rvlf.train"):
        rc, _, err = _tiny_pretrain(out, manifest, "--resume", "--allow-config-change", "train.lr=0.5",
                                    "train.batch_size=2", "train.progress=true")
    assert rc == 0, err
    assert "--allow-config-change: resuming with train.batch_size: 4 -> 2, train.lr: 0.001 -> 0.5" in caplog.text
    assert "train.progress" not in caplog.text.split("--allow-config-change")[1].splitlines()[0]  # neutral: no change
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    change = next(r for r in records if r.get("event") == "config_change")
    # 12 samples seen = 6 batches of 2: the new epoch has 8 steps, the run goes on from step 6 of 8
    assert change == {"step": 3, "event": "config_change",
                      "changes": {"train.batch_size": {"old": 4, "new": 2}, "train.lr": {"old": 0.001, "new": 0.5}},
                      "epoch": 0, "batch_in_epoch": 6, "schedule_step": 6, "lr": 0.5, "total_steps": 5}
    train = [(r["step"], r["lr"], r["epoch"]) for r in records if "loss" in r]
    assert train == [(1, 0.001, 0.25), (2, 0.001, 0.5), (3, 0.001, 0.75), (4, 0.5, 0.875), (5, 0.5, 1.0)]
    cfg = yaml.safe_load((out / "last" / "config.yaml").read_text())
    assert (cfg["train"]["lr"], cfg["train"]["batch_size"]) == (0.5, 2)  # what the run used from step 4 on
    assert {g["lr"] for g in json.loads((out / "last" / "optimizer.json").read_text())["param_groups"]} == {0.5}
    state = ckpt.load_trainer_state(out / "last")
    assert (state["global_step"], state["epoch"], state["batch_in_epoch"]) == (5, 0, 8)  # the end: 8 batches of 2


def test_config_differences_sort_what_a_resume_may_change():
    from rvlf.train.run_folder import config_differences

    old = {"data": {"root": "a.jsonl", "num_workers": 0}, "train": {"lr": 0.1, "eval_every_steps": 0, "progress": True},
           "encoder": {"d_model": 32}, "llm": {"name_or_path": "/x/base_lm", "lora_r": 64}, "grpo": {"beta": 0.04}}
    new = {"data": {"root": "a.jsonl", "num_workers": 4}, "train": {"lr": 0.1, "eval_every_steps": 50, "progress": False},
           "encoder": {"d_model": 64}, "llm": {"name_or_path": "Qwen/Qwen3-8B", "lora_r": 8}, "grpo": {"beta": 0.0}}
    computing, neutral, fixed = config_differences("grpo", old, new)
    assert computing == {"grpo.beta": (0.04, 0.0)}
    assert neutral == {"data.num_workers": (0, 4), "train.eval_every_steps": (0, 50), "train.progress": (True, False)}
    assert fixed == {"llm.lora_r": (64, 8)}  # GRPO's encoder and base LM come from its own checkpoint: not compared
    computing, _, fixed = config_differences("sft", old, new)
    assert "encoder.d_model" not in computing | fixed and fixed.keys() == {"llm.name_or_path", "llm.lora_r"}


def test_sft_resume_takes_the_allowed_new_lr(tmp_path):
    """The report's stage (SLT-SFT, two lr groups): `--allow-config-change train.lr=0.5 projector_lr=0.25`
    reaches both optimiser groups; variant: the SFT schedule (wsd, warm-up) is set to the resumed position."""
    from helpers import CHEAP, cli_output, tiny_runs

    manifest, s1, _ = tiny_runs(tmp_path)
    out = tmp_path / "sft"
    args = ["sft", "--config", REPO / "configs/demo/sft.yaml", "--out", out, "--init", s1 / "last",
            f"data.root={manifest}", "train.batch_size=4", "train.epochs=2", "train.log_every_steps=1",
            "train.eval_every_steps=1000", *CHEAP]
    rc, _, err = cli_output(*args, "--max-steps", "2")
    assert rc == 0, err
    rc, _, err = cli_output(*args, "--resume", "train.lr=0.5", "projector_lr=0.25", "--max-steps", "3")
    assert rc == 2 and "projector_lr: 0.002 -> 0.25, train.lr: 0.003 -> 0.5" in err, err
    rc, _, err = cli_output(*args, "--resume", "--allow-config-change", "train.lr=0.5", "projector_lr=0.25",
                            "--max-steps", "3")
    assert rc == 0, err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    change = next(r for r in records if r.get("event") == "config_change")
    assert change["changes"] == {"projector_lr": {"old": 0.002, "new": 0.25}, "train.lr": {"old": 0.003, "new": 0.5}}
    assert (change["epoch"], change["batch_in_epoch"], change["schedule_step"]) == (0, 2, 2)
    groups = json.loads((out / "last" / "optimizer.json").read_text())["param_groups"]
    assert sorted(g["initial_lr"] for g in groups) == [0.25, 0.5]  # the new base lrs of both groups
    step3 = next(r for r in records if r.get("step") == 3 and "loss" in r)
    assert step3["lr"] == pytest.approx(change["lr"])  # the first group's lr on the new schedule at step 3
    assert step3["lr"] > 0.01  # not the old schedule (base lr 0.003)


def test_a_finished_run_resumed_with_new_settings_trains_no_step_again(tmp_path, caplog):
    """A finished run (its last epoch ended in a partial batch: 6 samples in batches of 4, 2 steps) resumed
    with `--allow-config-change train.lr=...` has seen the whole epoch: no step is trained again and its
    checkpoint stays; variant: a changed batch size too. Resuming a folder that holds no run says so."""
    manifest = write_toy_corpus(tmp_path / "toy", n_train=6, n_dev=4, n_test=4)
    out = tmp_path / "run"
    rc, _, err = _tiny_pretrain(out, manifest)
    assert rc == 0, err
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    for extra in (["train.lr=0.01"], ["train.lr=0.01", "train.batch_size=2"]):
        rc, _, err = _tiny_pretrain(out, manifest, "--resume", "--allow-config-change", *extra)
        assert rc == 0, err
        state = json.loads((out / "last" / "trainer_state.json").read_text())
        assert state["global_step"] == max(steps) == 2, err
    rc, _, err = _tiny_pretrain(tmp_path / "typo", manifest, "--resume", "--max-steps", "1")
    assert rc == 0 and "--resume: no run there to continue" in caplog.text
