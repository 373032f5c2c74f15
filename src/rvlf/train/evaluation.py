"""Evaluation of a stage: decode a dataset, score it with the paper's protocol, keep the best.

Scores are BLEU-1..4 and ROUGE-L (`rvlf.text.metrics`, the SLRT/signjoey protocol) plus the mean
Eq. 15 reward; the best checkpoint is the one with the highest dev BLEU-4 (Sec. 4.1).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
from accelerate.utils import gather_object
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from rvlf.progress import is_terminal
from rvlf.rl.rewards import translation_reward
from rvlf.text.metrics import corpus_scores
from rvlf.train.stage import Stage


@dataclass
class EvalResult:
    metrics: dict[str, float]
    ids: list[str] = field(default_factory=list)
    hyps: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)


def is_better(metrics: dict[str, float], best: dict[str, float] | None) -> bool:
    """Highest dev BLEU-4 (Sec. 4.1); a tie (e.g. 0 early in training) goes to the higher reward."""
    if best is None:
        return True
    return (metrics["bleu4"], metrics["reward"]) > (best["bleu4"], best["reward"])


@torch.no_grad()
def evaluate_stage(
    stage: Stage,
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    collate_fn: Callable,
    batch_size: int = 8,
    num_beams: int = 5,
    max_new_tokens: int = 64,
    device: torch.device | str = "cpu",
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = False,
    lockstep: bool = False,
) -> EvalResult:
    """Decode `dataset` with `stage.decode` and score it (BLEU-1..4, ROUGE-L, mean Eq. 15 reward).

    Under several processes each decodes every `num_processes`-th sample and the results are
    gathered, so every process returns the same scores. `lockstep` (a model sharded with FSDP: every forward is a
    collective): a process with fewer batches than another then decodes throw-away copies of one of its
    samples until all have decoded as many batches (the real batches, so the scores, are unchanged).
    """
    idx = list(range(process_index, len(dataset), num_processes))
    loader = DataLoader(Subset(dataset, idx), batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    was_training = model.training
    model.eval()
    ids, hyps, refs = [], [], []
    # a transient bar on a terminal only: in a log, the dev scores line says it is done
    for batch in tqdm(loader, desc=f"{stage.name} decode", disable=not progress or not is_terminal(sys.stderr),
                      leave=False):
        batch = move_batch(batch, device)
        hyps += stage.decode(batch, num_beams, max_new_tokens)
        ids += batch["ids"]
        refs += batch["texts"]
    if lockstep and num_processes > 1:
        per_process = -(-len(dataset) // num_processes)  # samples of the busiest process
        filler = move_batch(collate_fn([dataset[idx[-1] if idx else 0]]), device)
        for _ in range(-(-per_process // batch_size) - len(loader)):
            stage.decode(filler, num_beams, max_new_tokens)
    model.train(was_training)
    if num_processes > 1:
        ids, hyps, refs = gather_object(ids), gather_object(hyps), gather_object(refs)
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        ids, hyps, refs = [ids[i] for i in order], [hyps[i] for i in order], [refs[i] for i in order]
    metrics = corpus_scores(hyps, refs, stage.lang)
    rewards = translation_reward(hyps, refs, stage.lang)
    metrics["reward"] = 100.0 * sum(rewards) / max(1, len(rewards))
    return EvalResult(metrics, ids, hyps, refs)


def move_batch(batch: dict, device) -> dict:
    """The batch's tensors on `device` (lists of ids and texts stay as they are)."""
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
