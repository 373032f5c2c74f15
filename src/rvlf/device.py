"""Which torch device to run on: the one asked for, checked, or the default (CUDA when available)."""

from __future__ import annotations

from rvlf.errors import RvlfError


def resolve_device(device: str | None = None, what: str = "--device") -> str:
    """`device` ("cpu", "cuda", "cuda:N", "mps") checked against this machine, or the default
    ("cuda" when available, else "cpu"). Raises `RvlfError` (one line naming `what`) for a name
    torch does not know or a device this machine does not have."""
    # torch: only when a device is chosen for a model; rvlf.device sits beside the configs, which stay torch-free
    import torch

    if device is None or str(device).strip() == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise RvlfError(f"{what} {device}: not a torch device (cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RvlfError(f"{what} {device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RvlfError(f"{what} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RvlfError(f"{what} {device}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise RvlfError(f"{what} {device}: rvlf runs on cpu, cuda or mps")
    return str(dev)
