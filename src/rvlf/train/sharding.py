"""Sharded training (PyTorch FSDP 2, `fully_shard`) as the training shell and the stages need it.

Under `accelerate launch --config_file configs/accelerate/fsdp.yaml` (or `fsdp_cpu_2proc.yaml`) accelerate
shards the model with `fully_shard`: every Qwen3 decoder layer is one unit (gathered before its forward,
freed after), the rest (skeleton encoder, fusion + projector, embeddings, final norm, LM head) is the
root unit. Parameters, gradients and AdamW states are then `DTensor`s holding 1/N of each tensor
(ZeRO-3). This module keeps rvlf's checkpoints what they are without sharding - whole safetensors
files written by the main process, readable by `rvlf evaluate` on one process and resumable on any
number of processes:

- `full_tensors` gathers a state dict of `DTensor`s to whole tensors (a collective: every process calls
  it); `shard_like` cuts whole tensors back to the shards of the live model (no communication: every
  process reads the same file);
- `full_optimizer_state` / `sharded_optimizer_state` do the same for `optimizer.state_dict()`, whose
  parameter order is the same with and without sharding;
- `gathered(model)` holds the root unit's parameters whole while a stage calls a method other than
  `forward` (generation, the GRPO reference pass): FSDP gathers them only around `forward`;
- `mark_generation_synced(model)`: under FSDP every process must run the same number of forward
  passes, so `generate` keeps stepping until all processes are done (transformers' `synced_gpus`).

FSDP 1 (`fsdp_version: 1`) is refused with one line: its flat parameters need other state-dict code
and it is being retired by PyTorch (https://docs.pytorch.org/docs/stable/distributed.fsdp.fully_shard.html).
"""

from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from accelerate.state import PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from transformers import GenerationMixin

from rvlf.errors import ConfigError


def _dtensor():
    # torch.distributed.tensor: only under FSDP (a torch build without distributed support never gets here)
    from torch.distributed.tensor import DTensor

    return DTensor


def fsdp_on_cpu(accelerator):
    """`accelerator`, switched to FSDP when `accelerate launch` asked for it (`ACCELERATE_USE_FSDP`) on CPU
    processes (`ACCELERATE_USE_CPU=true`, gloo).

    accelerate 1.16 turns an FSDP launch on CPU into plain data parallelism (DistributedType.MULTI_CPU:
    `AcceleratorState` enables FSDP only for accelerator devices), while PyTorch's `fully_shard` runs on
    CPU with gloo. Here the state is set to FSDP with the plugin the launcher's FSDP_* variables
    describe, which is what accelerate does on GPUs; `prepare` then shards the model with `fully_shard`.
    Used for the two-process CPU test (configs/accelerate/fsdp_cpu_2proc.yaml); on GPUs nothing changes."""
    if (accelerator.distributed_type == DistributedType.MULTI_CPU
            and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"):
        plugin = FullyShardedDataParallelPlugin()
        if accelerator.mixed_precision != "no":
            plugin.set_mixed_precision(accelerator.mixed_precision)
        accelerator.state.fsdp_plugin = plugin
        accelerator.state.distributed_type = DistributedType.FSDP
        # every later AcceleratorState() copies PartialState's fields over its own: set it there too
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return accelerator


def is_sharded(accelerator) -> bool:
    """True under FSDP 2; `ConfigError` under FSDP 1."""
    if accelerator is None or accelerator.distributed_type != DistributedType.FSDP:
        return False
    if not getattr(accelerator, "is_fsdp2", False):
        raise ConfigError("FSDP 1 is not supported by rvlf: set fsdp_version: 2 in the accelerate config "
                          "(configs/accelerate/fsdp.yaml)")
    return True


def check_wrappable(accelerator, model: torch.nn.Module) -> None:
    """Before `prepare`: under FSDP, the layer class the accelerate config wraps must be in `model`
    (`ConfigError` naming it, instead of accelerate's traceback; e.g. stage 1 has no Qwen3 layer)."""
    if accelerator.distributed_type != DistributedType.FSDP:
        return
    wanted = getattr(accelerator.state.fsdp_plugin, "transformer_cls_names_to_wrap", None) or []
    present = {type(m).__name__ for m in model.modules()}
    missing = [name for name in wanted if name not in present]
    if missing:
        raise ConfigError(f"the accelerate config shards with FSDP around {', '.join(missing)}, which this "
                          f"stage's model ({type(model).__name__}) does not have: FSDP is for stages 2 and 3 "
                          "(sft, grpo); run this one with ddp.yaml or cpu_2proc.yaml")


def is_fsdp_module(model: torch.nn.Module) -> bool:
    try:
        # torch.distributed.fsdp: only under FSDP (absent from a torch build without distributed support)
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(model, FSDPModule)


def describe(model: torch.nn.Module) -> str:
    """`"N units, P of Q parameters sharded"`: how `fully_shard` split `model` (for the log)."""
    units = sum(1 for m in model.modules() if is_fsdp_module(m))
    DTensor = _dtensor()
    params = list(model.parameters())
    sharded = sum(1 for p in params if isinstance(p, DTensor))
    return f"{units} units, {sharded} of {len(params)} parameter tensors sharded"


def full_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`{key: DTensor shard}` -> `{key: whole tensor on the CPU}`; other values moved to the CPU.

    A collective: every process must call it with the same keys in the same order."""
    DTensor = _dtensor()
    out = {}
    for key, value in state.items():
        if isinstance(value, DTensor):
            value = value.full_tensor()
        out[key] = value.detach().cpu() if torch.is_tensor(value) else value
    return out


def shard_like(state: dict[str, torch.Tensor], live: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Whole tensors of `state` cut to the shards of the `DTensor`s of `live` (same keys); tensors
    that are not sharded in `live` are returned as they are. Local: every process holds `state` whole."""
    # torch.distributed.tensor: only under FSDP (a torch build without distributed support never gets here)
    from torch.distributed.tensor import distribute_tensor

    DTensor = _dtensor()
    out = {}
    for key, value in state.items():
        ref = live.get(key)
        if isinstance(ref, DTensor) and torch.is_tensor(value) and not isinstance(value, DTensor):
            value = distribute_tensor(value.to(device=ref.device, dtype=ref.dtype), ref.device_mesh, ref.placements,
                                      src_data_rank=None)
        out[key] = value
    return out


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """`optimizer.state_dict()` with every sharded state tensor (AdamW's moments) whole. Collective."""
    sd = optimizer.state_dict()
    sd["state"] = {pid: full_tensors(st) for pid, st in sd["state"].items()}
    return sd


def sharded_optimizer_state(optimizer: torch.optim.Optimizer, sd: dict) -> dict:
    """A whole optimizer state (`full_optimizer_state`, or one saved without sharding) cut to the
    shards of `optimizer`'s parameters (`DTensor`s after accelerate's `prepare`)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    DTensor = _dtensor()
    state = {}
    for pid, st in sd["state"].items():
        param = params[int(pid)]
        if isinstance(param, DTensor):
            live = {k: param for k, v in st.items() if torch.is_tensor(v) and v.shape == param.shape}
            st = shard_like(st, live)
        state[pid] = st
    return {"state": state, "param_groups": sd["param_groups"]}


@contextmanager
def gathered(model: torch.nn.Module) -> Iterator[None]:
    """Hold the root FSDP unit's parameters whole (encoder, fusion, embeddings, LM head) for a call
    that is not `model.forward`; the decoder layers gather themselves in their own forward. No-op
    without FSDP."""
    if not is_fsdp_module(model):
        yield
        return
    # FSDP finds its root in the first forward; a call before any forward (GRPO's baseline evaluation)
    # must do that first, or the layers' own forwards would each claim to be the root
    model._get_fsdp_state()._lazy_init()
    model.unshard()
    try:
        yield
    finally:
        model.reshard()


def close_process_group_at_exit() -> None:
    """Destroy the process group when the process exits (once per process).

    With several processes on CPU (DDP or FSDP, gloo), a process group left to the interpreter's teardown
    sometimes aborted a finished run ("terminate called without an active exception", exit code -6, seen
    in tests/test_distributed.py and tests/test_sharded.py after everything was saved)."""
    global _CLOSE_REGISTERED
    if _CLOSE_REGISTERED:
        return
    _CLOSE_REGISTERED = True

    def close() -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    atexit.register(close)


_CLOSE_REGISTERED = False


def mark_generation_synced(model: torch.nn.Module) -> None:
    """Make every `generate` under the sharded `model` keep all processes stepping together.

    Under FSDP each process must run the same number of forward passes (each one gathers the
    layers' shards from all processes), whichever finishes its sequences first. transformers does
    this (`synced_gpus`) for a model it marks `_is_fsdp_managed_module`; here the LM that generates
    is inside rvlf's model, so it is marked here."""
    for module in model.modules():
        if isinstance(module, GenerationMixin):
            module._is_fsdp_managed_module = True
