"""Shared test helpers: the toy corpus, tiny runs of the three stages, the CLI in-process.

Plain functions and constants (tests import them with `from helpers import ...`); the pytest
fixtures built on them are in conftest.py. No test imports another test file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RVLF_FIXTURES", REPO.parent / "shared" / "fixtures"))


def write_toy_corpus(root: Path, n_train: int = 32, n_dev: int = 8, n_test: int = 8, dino_dim: int = 16,
                     seed: int = 0) -> Path:
    """A small JSONL-manifest corpus of random (but fixed) feature files; returns the manifest.

    Every word has its own keypoint pattern, so the texts are learnable from the features; the
    corpus is for pipeline tests and overfitting, not for measuring anything.
    """
    import json

    import numpy as np

    from rvlf.data.features import save_video_features

    rng = np.random.default_rng(seed)
    words = "the cat dog eats runs fast slow red blue big small house tree sun rain".split()
    protos = {w: rng.uniform(100, 400, size=(77, 2)).astype(np.float32) for w in words}
    dino_protos = {w: rng.normal(size=(3, dino_dim)).astype(np.float32) for w in words}
    (root / "features").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n_train + n_dev + n_test):
        split = "train" if i < n_train else ("dev" if i < n_train + n_dev else "test")
        text = [str(w) for w in rng.choice(words, int(rng.integers(3, 7)))]
        frames, dino = [], []
        for w in text:
            for _ in range(4):
                xy = protos[w] + rng.normal(scale=2.0, size=(77, 2))
                frames.append(np.concatenate([xy, np.ones((77, 1))], axis=1))
                dino.append(dino_protos[w] + rng.normal(scale=0.05, size=(3, dino_dim)))
        save_video_features(root / "features" / f"s{i}.npz", np.asarray(frames, np.float32),
                            np.asarray(dino, np.float32), {"source": "toy"})
        lines.append(json.dumps({"id": f"s{i}", "split": split, "text": " ".join(text), "lang": "en",
                                 "features": f"features/s{i}.npz"}))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest



# Overrides that make the demo configs tiny and their evaluations cheap, for pipeline tests.
CHEAP = ["data.dev_max_samples=4", "train.num_beams=1", "train.max_new_tokens=8", "train.progress=false"]
TINY_STAGE1 = [
    "model.d_model=32", "model.encoder.d_model=32", "model.ff_dim=64", "model.encoder.ff_dim=64",
    "model.contrastive_dim=32", "model.encoder.gcn_channels=[8,16]", "model.num_heads=2", "model.encoder.num_heads=2",
]


def cli(argv: list[str]) -> int:
    from rvlf.cli import main

    return main(argv)


def cli_output(*argv) -> tuple[int, str, str]:
    """`rvlf ARGV...` (any path-like arguments) -> (exit code, stdout, stderr)."""
    import contextlib
    import io

    from rvlf.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def tiny_runs(root: Path, *, sft_steps: int = 0) -> tuple[Path, Path, Path | None]:
    """(manifest, stage-1 run, SFT run or None): a 16/4/4 toy corpus, 3 stage-1 steps, `sft_steps` SFT steps."""
    manifest = write_toy_corpus(root / "toy", n_train=16, n_dev=4, n_test=4)
    assert cli(["pretrain", "--config", str(REPO / "configs/demo/pretrain.yaml"), "--out", str(root / "s1"),
                "--max-steps", "3", f"data.root={manifest}", "train.batch_size=4", *CHEAP, *TINY_STAGE1]) == 0
    if not sft_steps:
        return manifest, root / "s1", None
    assert cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(root / "sft"),
                "--init", str(root / "s1" / "last"), "--max-steps", str(sft_steps), f"data.root={manifest}",
                "train.batch_size=4", *CHEAP]) == 0
    return manifest, root / "s1", root / "sft"


def build_tiny_grpo_run(root: Path) -> Path:
    """The demo's three stages in miniature, shaped like `rvlf demo`'s runs (demo configs; tiny stage 1):
    a 16/4/4 toy corpus with 16-dim DINOv2 features from a tiny random DINOv2 that the checkpoints
    carry (`dinov2/`), 3 stage-1 steps, 2 SFT steps, 1 GRPO step. Returns the GRPO run folder;
    `root/s1`, `root/sft` hold the earlier stages."""
    from rvlf.data.features import save_tiny_dinov2

    manifest = write_toy_corpus(root / "toy", n_train=16, n_dev=4, n_test=4)
    dino = save_tiny_dinov2(root / "dino16", hidden_size=16, intermediate_size=32)
    common = [f"data.root={manifest}", f"data.dino_model={dino}", "train.batch_size=4", *CHEAP]
    assert cli(["pretrain", "--config", str(REPO / "configs/demo/pretrain.yaml"), "--out", str(root / "s1"),
                "--max-steps", "3", *common, *TINY_STAGE1]) == 0
    assert cli(["sft", "--config", str(REPO / "configs/demo/sft.yaml"), "--out", str(root / "sft"),
                "--init", str(root / "s1" / "best"), "--max-steps", "2", *common]) == 0
    assert cli(["grpo", "--config", str(REPO / "configs/demo/grpo.yaml"), "--out", str(root / "grpo"),
                "--init", str(root / "sft" / "best"), "--max-steps", "1", *common, "train.batch_size=2",
                "grpo.num_generations=2", "grpo.max_new_tokens=8"]) == 0
    return root / "grpo"


# `rvlf pretrain` for one tiny step on the demo config (add --out and data.root)
PRETRAIN = ["pretrain", "--config", str(REPO / "configs/demo/pretrain.yaml"), "--max-steps", "1",
            "train.batch_size=4", *CHEAP, *TINY_STAGE1]


def cli_argv(argv: list) -> tuple[int, str, str]:
    """`cli_output` of an argument list."""
    return cli_output(*argv)


def nothing_trained(out: Path) -> None:
    """A refused run wrote no metrics and no checkpoint into `out`."""
    assert not (out / "metrics.jsonl").exists() and not (out / "last").exists() and not (out / "best").exists()


# --- two CPU processes under `accelerate launch` (tests/test_distributed.py, tests/test_sharded.py) ---

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accelerate_env() -> dict[str, str]:
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def launch(*args: str, config: str | None = None) -> subprocess.CompletedProcess:
    """`accelerate launch` two CPU processes of `python -m rvlf ARGS` (data parallel, or as the
    accelerate `config` file says, e.g. configs/accelerate/fsdp_cpu_2proc.yaml)."""
    exe = Path(sys.executable).parent / "accelerate"
    accelerate = [str(exe)] if exe.is_file() else [shutil.which("accelerate") or "accelerate"]
    how = ["--config_file", config] if config else ["--multi_gpu"]
    cmd = accelerate + ["launch", *how, "--num_processes", "2", "--num_machines", "1",
                        "--mixed_precision", "no", "--dynamo_backend", "no",
                        "--main_process_port", str(_free_port()), "-m", "rvlf", *args]
    return subprocess.run(cmd, cwd=REPO, env=_accelerate_env(), capture_output=True, text=True, timeout=240)
