"""The training shell shared by the three stages.

One code path for CPU, one GPU and many (`accelerate launch`): the stage supplies a model,
its optimiser parameter groups, a `train_step` and a `decode` function (`rvlf.train.stage`); the shell does
the rest - data order, cosine schedule with warm-up, gradient accumulation and clipping,
progress bar, TensorBoard and `metrics.jsonl`, dev evaluation with beam search (BLEU-1..4,
ROUGE-L and the Eq. 15 reward with `rvlf.text.metrics`), the best-dev-BLEU-4 checkpoint
(`best/`, Sec. 4.1: "the model achieving the highest BLEU-4 score on the validation set is
selected") and the last one (`last/`), `--resume`, and stopping cleanly on a NaN loss.

Resuming is exact: the data order of epoch e is drawn from `seed + e` (accelerate's seedable
sampler) and the epoch's first batches are skipped; model, optimiser, scheduler and every
process's RNG state come from the checkpoint, the RNG state being restored once the resumed
epoch's data iterator exists (creating one draws a number), and evaluation never consumes
training randomness. Only the main process writes; every process's RNG state is gathered to it.

Beside it: `optim` (optimiser and lr schedules), `evaluation` (decoding and scoring a split, the
best-checkpoint rule), `reproducibility` (seeding), `checkpoint` (atomic checkpoint files).
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, gather_object, set_seed
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from transformers.trainer_pt_utils import LengthGroupedSampler

from rvlf import atomic
from rvlf.config import TrainConfig
from rvlf.errors import ConfigError, TrainingError
from rvlf.progress import command_line, progress
from rvlf.train import checkpoint as ckpt
from rvlf.train import sharding
from rvlf.train.evaluation import EvalResult, evaluate_stage, is_better, move_batch
from rvlf.train.optim import build_optimizer, make_scheduler
from rvlf.train.reproducibility import rng_devices
from rvlf.train.stage import Stage, Step

log = logging.getLogger("rvlf.train")


def train_lengths(train_set: Dataset) -> list[int]:
    """Frames of each training sample (`SignDataset.lengths`), for `train.group_by_length`."""
    if not hasattr(train_set, "lengths"):
        raise ConfigError(f"train.group_by_length: {type(train_set).__name__} has no lengths(); set it to false")
    return list(train_set.lengths())


class LengthGroupedEpochSampler(Sampler):
    """transformers' `LengthGroupedSampler` with the order of epoch e drawn from `seed + e`
    (`set_epoch`, called by accelerate's data loader each epoch), so `--resume` replays the same
    batches, as accelerate's seedable sampler does for a plain shuffle."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        self._sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=torch.Generator())
        self.generator = self._sampler.generator
        self.seed = seed
        self.set_epoch(0)

    def __iter__(self):
        return iter(self._sampler)

    def __len__(self) -> int:
        return len(self._sampler)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


def make_accelerator(cfg: TrainConfig):
    return sharding.fsdp_on_cpu(Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=max(1, cfg.grad_accum),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
    ))


class Trainer:
    """Runs a `Stage` for `cfg.epochs` (or `max_steps`), evaluating and checkpointing."""

    def __init__(
        self,
        stage: Stage,
        *,
        model: torch.nn.Module,
        param_groups: list[dict],
        train_set: Dataset,
        dev_set: Dataset | None,
        collate_fn: Callable,
        cfg: TrainConfig,
        out_dir: str | Path,
        accelerator=None,
        max_steps: int | None = None,
        resume: bool = False,
        config_changes: dict | None = None,
        old_config: dict | None = None,
        dev_max_samples: int = 0,
        num_workers: int = 0,
    ):
        self.stage = stage
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.accelerator = accelerator or make_accelerator(cfg)
        # one data order for all processes (data_seed), independent dropout/sampling per process
        set_seed(cfg.seed, device_specific=True)
        self.max_steps = max_steps
        self.config_changes = dict(config_changes or {})  # accepted on --resume --allow-config-change
        self.old_config = old_config or {}
        self.train_size = len(train_set)
        self.collate_fn = collate_fn
        self.dev_set = dev_set
        if dev_set is not None and dev_max_samples and len(dev_set) > dev_max_samples:
            self.dev_set = Subset(dev_set, list(range(dev_max_samples)))
            if self.accelerator.is_main_process:  # the dev scores logged below are on this subset
                log.info("rvlf data: dev scores use the first %d of the %d dev samples (data.dev_max_samples)",
                         dev_max_samples, len(dev_set))
        sampler = LengthGroupedEpochSampler(cfg.batch_size, train_lengths(train_set), cfg.seed) \
            if cfg.group_by_length else None
        loader = DataLoader(
            train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler, collate_fn=collate_fn,
            num_workers=num_workers, drop_last=False,
        )
        optimizer = build_optimizer(param_groups, cfg)
        sharding.check_wrappable(self.accelerator, model)
        self.model, self.optimizer, self.train_loader = self.accelerator.prepare(model, optimizer, loader)
        self.sharded = sharding.is_sharded(self.accelerator)  # FSDP 2: whole tensors only in checkpoints
        if self.accelerator.num_processes > 1:
            sharding.close_process_group_at_exit()
        if self.sharded:
            sharding.mark_generation_synced(self.model)
            log.info("%s: model sharded with FSDP 2 over %d processes (%s)", stage.name,
                     self.accelerator.num_processes, sharding.describe(self.model))
        self.steps_per_epoch = max(1, math.ceil(len(self.train_loader) / max(1, cfg.grad_accum)))
        self.total_steps = max(1, int(round(cfg.epochs * self.steps_per_epoch)))
        if max_steps:
            self.total_steps = min(self.total_steps, max_steps) if cfg.epochs else max_steps
        # The schedule follows the configured epochs, so a --max-steps smoke run sees the real lrs.
        self.schedule_steps = max(1, int(round(cfg.epochs * self.steps_per_epoch)))
        self.scheduler = self._make_scheduler()
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_dev: dict[str, float] | None = None  # all dev metrics of the best checkpoint
        self.history: list[dict] = []
        self._writer = None
        self._saved_step: int | None = None  # step of the checkpoint in `last/`
        self._pending_rng: ckpt.RngState | None = None
        if resume:
            self._resume()

    def _make_scheduler(self):
        cfg = self.cfg
        warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        return make_scheduler(self.optimizer, cfg.scheduler, min(warmup, self.schedule_steps - 1), self.schedule_steps,
                              cfg.decay_fraction)

    # --- utilities for stages -----------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def step_tools(self) -> Step:
        """What a stage's `train_step` gets: the prepared model and the optimiser operations."""
        return Step(model=self.model, optimize=self.optimize, backward=self.backward, update=self.update,
                    gather=self.accelerator.gather)

    def optimize(self, loss: torch.Tensor) -> None:
        """Backward, and on an accumulation boundary: clip, step, schedule, zero."""
        self._check_finite(loss)
        self.accelerator.backward(loss)
        self.update()

    def backward(self, loss: torch.Tensor, *, sync: bool = True) -> None:
        """Backward of one micro-batch's share of the loss, gradients added to what is there; under DDP
        `sync=False` skips the all-reduce (every micro-batch but a step's last)."""
        if sync or self.accelerator.num_processes == 1:
            self.accelerator.backward(loss)
        else:
            with self.accelerator.no_sync(self.model):
                self.accelerator.backward(loss)

    def update(self, loss: torch.Tensor | None = None, *, schedule: bool = True) -> None:
        """After `backward`: stop on a non-finite `loss`, then on an accumulation boundary clip, step,
        advance the lr schedule (unless `schedule=False`: one schedule step per training step), zero."""
        if loss is not None:
            self._check_finite(loss)
        if self.accelerator.sync_gradients and self.cfg.grad_clip > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            self.accelerator.clip_grad_norm_(params, self.cfg.grad_clip)
        self.optimizer.step()
        if self.accelerator.sync_gradients and schedule:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop every process together when any of them sees a NaN or Inf loss."""
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(bad)], device=loss.device)
            anywhere = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        else:
            anywhere = bad
        if not anywhere:
            return
        value = loss.detach().float().mean().item() if bad else "non-finite on another process"
        kept = (f"the last good checkpoint (step {self._saved_step}) is kept in {self.out_dir / 'last'}"
                if self._saved_step is not None else "no checkpoint had been saved yet")
        raise TrainingError(f"{self.stage.name}: loss became {value} at step {self.global_step + 1}; "
                            f"training stopped, {kept} (lower train.lr or check the data)")

    # --- logging ------------------------------------------------------------------------------

    def log(self, scalars: dict[str, float], step: int | None = None) -> None:
        if not self.is_main:
            return
        step = self.global_step if step is None else step
        if self._writer is None:
            # TensorBoard (about 170 modules): only once the main process logs its first scalars
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        for k, v in scalars.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self._writer.add_scalar(f"{self.stage.name}/{k}", v, step)
        record = {"step": step, "epoch": round(self.epoch + self.batch_in_epoch / max(1, len(self.train_loader)), 4)}
        record.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in scalars.items()})
        self.history.append(record)
        self._append_metrics(record)

    def _append_metrics(self, record: dict) -> None:
        path = self.out_dir / "metrics.jsonl"
        with atomic.reported_write(path, "the training log", "the last checkpoint is kept"), \
                open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, dataset: Dataset, *, num_beams: int | None = None, batch_size: int | None = None) -> EvalResult:
        """Translate `dataset` (sharded over processes) and score it with the paper's protocol."""
        acc = self.accelerator
        with torch.random.fork_rng(devices=rng_devices()), sharding.gathered(self.model):
            # evaluating never shifts training randomness
            return evaluate_stage(
                self.stage, self.unwrapped, dataset, collate_fn=self.collate_fn,
                batch_size=batch_size or self.cfg.batch_size, num_beams=num_beams or self.cfg.num_beams,
                max_new_tokens=self.cfg.max_new_tokens, device=acc.device,
                process_index=acc.process_index, num_processes=acc.num_processes, lockstep=self.sharded,
            )

    # --- checkpoints --------------------------------------------------------------------------

    def _trainer_state(self) -> dict:
        return {
            "stage": self.stage.name,
            "global_step": self.global_step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "num_processes": self.accelerator.num_processes,
            "best_dev": self.best_dev,
            "scheduler": _jsonable(self.scheduler.state_dict()),
        }

    def save(self, name: str, with_optimizer: bool = True) -> None:
        """Write `out_dir/name` from the main process; with the optimiser (a resumable checkpoint)
        also every process's RNG state. Every process must call it."""
        acc = self.accelerator
        rngs = None
        if with_optimizer:
            rngs = [ckpt.rng_state()]
            if acc.num_processes > 1:
                rngs = gather_object(rngs)
        model_state = optimizer_state = None
        if self.sharded:  # gathering the shards is a collective: every process takes part
            model_state = sharding.full_tensors(self.stage.model_state())
            optimizer_state = sharding.full_optimizer_state(self.optimizer) if with_optimizer else None
        acc.wait_for_everyone()
        if self.is_main:
            if not self.sharded:
                model_state = self.stage.model_state()
                optimizer_state = self.optimizer.state_dict() if with_optimizer else None
            ckpt.save_checkpoint(
                self.out_dir / name,
                model_state=model_state,
                trainer_state=self._trainer_state(),
                config_yaml=self.stage.config_yaml(),
                optimizer_state=optimizer_state,
                with_rng=with_optimizer,
                rng_states=rngs,
                extra=self.stage.save_extra,
            )
        if name == "last":
            self._saved_step = self.global_step
        acc.wait_for_everyone()

    def load_weights(self, path: Path) -> None:
        """Load a checkpoint's `model.safetensors` (whole tensors) into the stage's model, cut to this
        process's shards under FSDP (`rvlf.train.sharding`). Every process must call it."""
        weights = ckpt.load_weights(path)
        if self.sharded:
            weights = sharding.shard_like(weights, self.stage.model_state())
        self.stage.load_model_state(weights)

    def _resume(self) -> None:
        last = self.out_dir / "last"
        if not last.exists() and not last.with_name("last.old").exists():
            log.info("%s: no checkpoint in %s, starting from scratch", self.stage.name, last)
            return
        last = ckpt.resolve_checkpoint(last)
        state = ckpt.load_trainer_state(last)
        self.load_weights(last / ckpt.MODEL_FILE)
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        opt = ckpt.load_optimizer_state(last)
        if opt is not None:
            self.optimizer.load_state_dict(sharding.sharded_optimizer_state(self.optimizer, opt)
                                           if self.sharded else opt)
        self.scheduler.load_state_dict(state["scheduler"])
        self.global_step = state["global_step"]
        self.epoch = state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self.best_dev = state.get("best_dev")
        if self.best_dev is None and state.get("best_score", -1.0) >= 0:  # written before best_dev existed
            self.best_dev = {"bleu4": state["best_score"], "reward": state.get("best_tiebreak", -1.0)}
        self._saved_step = self.global_step
        rank = self.accelerator.process_index
        self._pending_rng = ckpt.load_rng(last, state, rank)
        if self._pending_rng is None:
            log.warning("%s: %s holds no RNG state for process %d; its randomness restarts from the seed",
                        self.stage.name, last, rank)
        if self.is_main:
            _truncate_metrics(self.out_dir / "metrics.jsonl", self.global_step)
        log.info("%s: resumed from %s at step %d (epoch %d, batch %d)", self.stage.name, last,
                 self.global_step, self.epoch, self.batch_in_epoch)
        if self.config_changes:
            self._take_new_config(state, fresh)

    def _take_new_config(self, state: dict, fresh: list[dict]) -> None:
        """`--resume --allow-config-change`: the new settings take effect from the resumed step on.

        The optimiser's groups get the new hyper-parameters (lr, weight decay, momentum, ...; its
        moment estimates are kept), the lr schedule is rebuilt from the new config and set to the
        resumed position, and the position in the epoch is recomputed from the samples already seen
        (`batch_in_epoch x old batch size x processes`, rounded down to a whole new optimiser step:
        at most one new step's samples are seen twice; with `group_by_length` the batches of the
        rest of the epoch are cut anew). A new `train.seed` re-seeds instead of restoring the RNG.
        The change is logged in `metrics.jsonl` (`event: config_change`)."""
        cfg = self.cfg
        for group, new in zip(self.optimizer.param_groups, fresh):
            group.update(new)  # `initial_lr` too: the new schedule's base lr
        old_train = self.old_config.get("train", {})
        old_batch = int(old_train.get("batch_size", cfg.batch_size))
        old_procs = int(state.get("num_processes", self.accelerator.num_processes))
        accum = max(1, cfg.grad_accum)
        seen = min(self.train_size, self.batch_in_epoch * old_batch * old_procs)
        batch = seen // (cfg.batch_size * self.accelerator.num_processes) // accum * accum
        if seen >= self.train_size or batch >= len(self.train_loader):  # the whole epoch was seen
            self.epoch, batch = self.epoch + 1, 0
        self.batch_in_epoch = batch
        position = min(self.schedule_steps, self.epoch * self.steps_per_epoch + batch // accum)
        self.scheduler = self._make_scheduler()
        if position:
            self.scheduler.last_epoch = position - 1
            with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": no step is skipped
                warnings.simplefilter("ignore")
                self.scheduler.step()
        self.total_steps = self.global_step + max(0, self.schedule_steps - position) if cfg.epochs else \
            self.total_steps
        if self.max_steps:
            self.total_steps = min(self.total_steps, self.max_steps)
        if "train.seed" in self.config_changes:
            self._pending_rng = None  # set_seed(new seed) in __init__ stands
        record = {"step": self.global_step, "event": "config_change",
                  "changes": {k: {"old": o, "new": n} for k, (o, n) in self.config_changes.items()},
                  "epoch": self.epoch, "batch_in_epoch": batch, "schedule_step": position,
                  "lr": self.scheduler.get_last_lr()[0], "total_steps": self.total_steps}
        if self.is_main:
            self._append_metrics(record)
        log.info("%s: new settings in effect from step %d: epoch %d, batch %d (%d samples of the epoch seen), "
                 "schedule step %d of %d, lr %.3g", self.stage.name, self.global_step, self.epoch, batch, seen,
                 position, self.schedule_steps, self.scheduler.get_last_lr()[0])

    # --- the loop -----------------------------------------------------------------------------

    def _eval_due(self) -> bool:
        if self.dev_set is None:
            return False
        every = self.cfg.eval_every_steps or max(1, int(round(self.cfg.eval_every_epochs * self.steps_per_epoch)))
        return self.global_step % every == 0

    @property
    def best_score(self) -> float:
        """Dev BLEU-4 of the best checkpoint (-1 before the first evaluation)."""
        return self.best_dev["bleu4"] if self.best_dev else -1.0

    def is_better(self, metrics: dict[str, float]) -> bool:
        """Better than the best checkpoint so far (`rvlf.train.evaluation.is_better`)."""
        return is_better(metrics, self.best_dev)

    def _evaluate_and_keep_best(self) -> dict[str, float]:
        res = self.evaluate(self.dev_set)
        self.log({f"dev_{k}": v for k, v in res.metrics.items()})
        if self.is_better(res.metrics):
            self.keep_best(res.metrics)
        return res.metrics

    def keep_best(self, metrics: dict[str, float]) -> None:
        """Record `metrics` as the best dev scores and save the model as `best`."""
        self.best_dev = dict(metrics)
        self.save("best", with_optimizer=False)

    def fit(self) -> dict:
        """Train to the end (or `max_steps`); returns the last dev metrics and the best score."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        # a bar on a terminal, a line every 5% of the steps in a log
        bar = progress(self.total_steps, initial=self.global_step, desc=self.stage.name, unit="step",
                       enabled=cfg.progress and self.is_main)
        last_dev: dict[str, float] = {}
        t0 = time.time()
        model = self.model
        model.train()
        step = self.step_tools()
        done = self.global_step >= self.total_steps
        n_epochs = max(1, math.ceil(cfg.epochs)) if cfg.epochs else 10**9
        while not done and self.epoch < n_epochs:
            self.train_loader.set_epoch(self.epoch)
            loader = self.train_loader
            if self.batch_in_epoch:
                loader = self.accelerator.skip_first_batches(self.train_loader, self.batch_in_epoch)
            for batch in loader:
                if self._pending_rng is not None:  # after the iterator is made, as in the first run
                    ckpt.set_rng_state(*self._pending_rng)
                    self._pending_rng = None
                batch = move_batch(batch, self.accelerator.device)
                with self.accelerator.accumulate(model):
                    scalars = self.stage.train_step(batch, step)
                self.batch_in_epoch += 1
                if not self.accelerator.sync_gradients:
                    continue
                self.global_step += 1
                bar.set_postfix(loss=f"{scalars.get('loss', float('nan')):.3f}", refresh=False)  # this step's loss
                bar.update(1)
                if self.global_step % max(1, cfg.log_every_steps) == 0 or self.global_step == 1:
                    scalars = dict(scalars, lr=self.scheduler.get_last_lr()[0])
                    self.log(scalars)
                if self._eval_due():
                    last_dev = self._evaluate_and_keep_best()
                    if self.is_main:
                        bar.write(command_line(f"step {self.global_step}: dev BLEU-4 {last_dev['bleu4']:.2f} "
                                               f"ROUGE-L {last_dev['rouge_l']:.2f} (best {self.best_score:.2f})",
                                               self.stage.name))
                    self.save("last")
                elif cfg.save_every_steps and self.global_step % cfg.save_every_steps == 0:
                    self.save("last")
                if self.global_step >= self.total_steps:
                    done = True
                    break
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
        bar.close()
        if self.dev_set is not None and not self._eval_due():
            last_dev = self._evaluate_and_keep_best()
        self.save("last")
        if self._writer is not None:
            self._writer.flush()
        return {"dev": last_dev, "best_dev": self.best_dev, "best_bleu4": self.best_score, "steps": self.global_step,
                "seconds": round(time.time() - t0, 1)}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the records a killed run logged after its last checkpoint (they are redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
    atomic.write_text(path, "".join(k + "\n" for k in keep), what="the training log")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    if torch.is_tensor(obj):
        return obj.tolist()
    return None
