"""`--device` / `device=`: one clear line for a device this machine lacks or torch does not know."""

from __future__ import annotations

import re

import pytest
import torch

from helpers import cli
from rvlf.device import resolve_device
from rvlf.errors import RvlfError


def test_default_and_valid_devices():
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device, problem", [
    ("cuda", "CUDA is not available on this machine"),
    ("cuda:1", "CUDA is not available on this machine"),
    ("gpu", "not a torch device (cpu, cuda, cuda:N, mps)"),
    ("meta", "rvlf runs on cpu, cuda or mps"),
])
def test_a_device_this_machine_lacks_is_one_line(device, problem, tmp_path, fixtures_dir, capsys):
    with pytest.raises(RvlfError, match=re.escape(problem)):
        resolve_device(device)
    # `rvlf translate --device cuda` was "internal error: AssertionError: Torch not compiled with CUDA enabled"
    pose = fixtures_dir / "holistic_97frames.pose"
    (tmp_path / "trainer_state.json").write_text("{}")  # a checkpoint folder, as far as the path check before torch sees
    assert cli(["translate", str(pose), "--checkpoint", str(tmp_path), "--device", device]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--device {device}: {problem}" in err[0], err
