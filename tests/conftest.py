"""Test set-up: nothing downloads, the real fixtures are found beside the checkout; fixtures only
(shared helper functions and constants are in helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing may reach a hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers import FIXTURES, build_tiny_grpo_run, write_toy_corpus  # noqa: E402 (after the offline switches)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures/` (real signer video, Holistic .pose files, lexicon signs)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"real fixtures not found at {FIXTURES} (set RVLF_FIXTURES)")
    return FIXTURES


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def toy_corpus(tmp_path) -> Path:
    """Manifest path of a 32/8/8 toy corpus with DINOv2-shaped features (see `write_toy_corpus`)."""
    return write_toy_corpus(tmp_path / "toy")


@pytest.fixture(scope="session")
def tiny_grpo_run(tmp_path_factory) -> Path:
    """`build_tiny_grpo_run`, built once per test run and shared by the xdist workers (file lock).
    Treat it as read-only."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "tiny-grpo-run"
    with FileLock(str(root) + ".lock"):
        if not (root / "complete").is_file():
            import shutil

            shutil.rmtree(root, ignore_errors=True)
            build_tiny_grpo_run(root)
            (root / "complete").write_text("ok\n")
    return root / "grpo"
