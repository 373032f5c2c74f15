"""What a recipe's stage gives the training shell (`Stage`), and what the shell gives one step (`Step`).

The stage owns its model (`stage.model`); the shell (`rvlf.train.loop.Trainer`) prepares that module in
place with accelerate, so `stage.model` is the live model for decoding and checkpoints. Neither holds
the other: `Trainer` calls the stage's methods, and `train_step` gets a `Step` with exactly what a
step needs (the prepared forward, backward, optimiser updates, a cross-process gather).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch


@dataclass(frozen=True)
class Step:
    """The shell's side of one training step.

    - `model`: the prepared module (DDP/mixed precision wrapped); call it for the training forward.
    - `optimize(loss)`: backward, and on an accumulation boundary clip, optimiser step, lr step, zero.
    - `backward(loss, sync=True)`: backward of one micro-batch's share; `sync=False` skips the DDP all-reduce.
    - `update(loss=None, schedule=True)`: after `backward`: NaN stop on `loss`, then clip, step, lr step, zero.
    - `gather(tensor)`: the tensor of every process, concatenated along dim 0 (`accelerate`'s gather).
    """

    model: torch.nn.Module
    optimize: Callable[[torch.Tensor], None]
    backward: Callable[..., None]
    update: Callable[..., None]
    gather: Callable[[torch.Tensor], torch.Tensor]


class Stage(Protocol):
    """What a stage recipe gives the shell."""

    name: str
    lang: str
    model: torch.nn.Module

    def train_step(self, batch: dict, step: Step) -> dict[str, float]:
        """Forward through `step.model`, `step.optimize(loss)`, return scalars to log (must include `loss`)."""

    def decode(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        """Decode a batch (beam search for evaluation)."""

    def model_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint holds."""

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None: ...

    def save_extra(self, directory: Path) -> None:
        """Tokenizer, base LM or anything else the checkpoint needs beside the weights."""

    def config_yaml(self) -> str: ...
