"""Stage 3 recipe: SLT-GRPO (Sec. 3.3, Table 11).

The SFT LoRA is merged into the base LM and a new LoRA (r 64, alpha 128, dropout 0.05) is
added on q/v; the reference policy is the merged model with that adapter disabled; encoder and
projector stay frozen. Each step takes a batch of inputs, samples `num_generations` (8)
translations per input in one batched, KV-cached `generate`, scores them with the Eq. 15 reward,
normalises rewards within each group (Eq. 16) and takes `mu` clipped policy-gradient steps with
the k3 KL penalty (Eqs. 17-19). AdamW lr 2e-5, 2 epochs, batch 8.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from rvlf.data.dataset import collate
from rvlf.errors import ConfigError
from rvlf.models.slt_lm import SignLanguageLM
from rvlf.rl.grpo import flat_groups, group_advantages, grpo_loss_terms
from rvlf.rl.rewards import translation_reward
from rvlf.train import checkpoint as ckpt
from rvlf.train.common import finish_run, load_samples
from rvlf.config import freeze, load_config
from rvlf.train.recipe_configs import GRPOConfig, SFTConfig, resumed_grpo, with_sft, with_widths
from rvlf.train.loop import Trainer
from rvlf.train.stage import Step
from rvlf.train.plots import plot_learning_curve
from rvlf.train.reproducibility import seed_everything
from rvlf.train.run_folder import Claim, claim
from rvlf.train.sharding import gathered
from rvlf.train.sign_lm import (SignLMStage, dino_width, load_grpo, load_sft, merged_policy, prepare_data,
                                write_base_lm)

log = logging.getLogger("rvlf.grpo")


class Completions(NamedTuple):
    """One micro-batch of a GRPO step: the inputs its completions come from and the completions.

    `keypoints [b,T,77,3]`, `frame_mask [b,T]`, `dino [b,T,3,D]` or None (b inputs); `completion_ids`,
    `completion_mask [n,L]` (n completions); `rows [n]`: the input row of each completion. The field
    order is `GRPOPolicy.forward`'s."""

    keypoints: torch.Tensor
    frame_mask: torch.Tensor
    dino: torch.Tensor | None
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    rows: torch.Tensor


class GRPOPolicy(nn.Module):
    """Wraps the policy so that DDP sees the log-probability pass as `forward`."""

    def __init__(self, sign_lm: SignLanguageLM):
        super().__init__()
        self.sign_lm = sign_lm

    def forward(self, keypoints, frame_mask, dino, completion_ids, completion_mask, rows, temperature: float = 1.0):
        return self.sign_lm.completion_logprobs(keypoints, frame_mask, dino, completion_ids, completion_mask,
                                                temperature=temperature, rows=rows)


def micro_batches(n: int, size: int, group_size: int) -> list[tuple[slice, slice]]:
    """(completion rows, input rows) of each micro-batch of at most `size` completions (0: one of all
    `n`). Completions are laid out group after group, `group_size` per input; a micro-batch may cut a
    group: its input rows are those its completions come from."""
    size = size or n
    out = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        out.append((slice(start, stop), slice(start // group_size, (stop - 1) // group_size + 1)))
    return out


class GRPOStage(SignLMStage):
    name = "grpo"

    def __init__(self, cfg: GRPOConfig, model: SignLanguageLM, base_lm_dir: Path | None, sft_state: dict):
        super().__init__(cfg, model, base_lm_dir)
        self.policy = GRPOPolicy(model)
        self.sft_state = sft_state  # the SFT adapter, kept so a checkpoint can rebuild the merged base

    def param_groups(self) -> list[dict]:
        return [{"params": self.model.trainable_parameters()["lora"], "lr": self.cfg.train.lr}]

    def train_step(self, batch: dict, step: Step) -> dict[str, float]:
        """One GRPO step: sample a group per input, score it, then `mu` clipped policy updates.

        Every log-probability (policy, old, reference) is taken at the sampling temperature over the
        whole vocabulary, as TRL does (top-k / top-p shape sampling only). The old policy of Eq. 17 is
        the first update's own log-probabilities, detached: the first update's ratio is exactly 1 for
        any `mu`, LoRA dropout included, and later updates of the step reuse them (docs/fidelity.md).

        The reference and policy passes run `grpo.micro_batch_size` completions at a time; each
        micro-batch's loss is weighted by its share of the step's completions, so the accumulated
        gradient is that of the un-split loss (the mean over all completions of Eq. 19)."""
        g = self.cfg.grpo
        k, temp = g.num_generations, g.temperature
        policy = self.model
        kp, fm, dino = batch["keypoints"], batch["frame_mask"], batch["dino"]
        policy.eval()  # sample without dropout
        with gathered(step.model):  # FSDP: the root unit whole outside forward (rvlf.train.sharding)
            gen = policy.generate(kp, fm, dino, num_beams=1, do_sample=True, num_return_sequences=k,
                                  temperature=temp, top_p=g.top_p, top_k=g.top_k, max_new_tokens=g.max_new_tokens)
        refs = [t for t in batch["texts"] for _ in range(k)]
        rewards = torch.tensor(
            translation_reward(gen.texts, refs, self.lang, lam=g.reward_lambda, kind=g.reward, short_punct=g.short_punct),
            dtype=torch.float32, device=kp.device)
        advantages = group_advantages(rewards, k).to(kp.device)
        flat = flat_groups(rewards, k).float()
        ids, mask = gen.completion_ids.to(kp.device), gen.completion_mask.to(kp.device)
        n = ids.shape[0]
        input_of = torch.arange(n, device=kp.device) // k
        chunks = micro_batches(n, g.micro_batch_size, k)

        def inputs(rows: slice, cols: slice) -> Completions:
            d = dino[cols] if dino is not None else None
            return Completions(kp[cols], fm[cols], d, ids[rows], mask[rows], input_of[rows] - cols.start)

        policy.train()
        ref_logps: list[torch.Tensor | None] = [None] * len(chunks)
        if g.beta != 0.0:
            with torch.no_grad(), policy.adapter_disabled(), gathered(step.model):  # the adapter (and its dropout) off: the SFT model
                for j, (rows, cols) in enumerate(chunks):
                    x = inputs(rows, cols)
                    ref_logps[j] = policy.completion_logprobs(x.keypoints, x.frame_mask, x.dino, x.completion_ids,
                                                              x.completion_mask, temperature=temp, rows=x.rows)
        old_logps: list[torch.Tensor | None] = [None] * len(chunks)
        tokens = mask.sum().clamp(min=1).float()
        stats: dict[str, float] = {}
        for update in range(g.mu):
            total = torch.zeros((), device=kp.device)
            sums = {"kl": 0.0, "clip_low": 0.0, "clip_high": 0.0, "clip": 0.0, "ratio": 0.0}
            for j, (rows, cols) in enumerate(chunks):
                x = inputs(rows, cols)
                logps = step.model(*x, temperature=temp)
                if old_logps[j] is None:
                    old_logps[j] = logps.detach()
                loss, terms = grpo_loss_terms(logps, old_logps[j], ref_logps[j], advantages[rows], x.completion_mask,
                                              epsilon=g.epsilon, beta=g.beta)
                share = (rows.stop - rows.start) / n  # the un-split loss is the mean over all n completions
                step.backward(loss * share, sync=j == len(chunks) - 1)
                total = total + loss.detach() * share
                weight = float(x.completion_mask.sum()) / float(tokens)  # the statistics are means over all real tokens
                for name in sums:
                    sums[name] += terms[name] * weight
            step.update(total, schedule=update == g.mu - 1)  # one lr-schedule step per training step
            stats = {"loss": float(total), **sums}
        all_rewards = step.gather(rewards)
        all_flat = step.gather(flat)
        stats.update(reward_mean=float(all_rewards.mean()), reward_std=float(all_rewards.std()) if all_rewards.numel() > 1 else 0.0,
                     flat_group_share=float(all_flat.mean()), completion_length=float(mask.sum(dim=1).float().mean()))
        return stats

    def model_state(self) -> dict[str, torch.Tensor]:
        state = self.model.state_dict_for_checkpoint()
        state.update({f"sft.{k}": v for k, v in self.sft_state.items()})
        return state

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_checkpoint_state({k: v for k, v in state.items() if not k.startswith("sft.")})


def run(cfg: GRPOConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True, overwrite: bool = False,
        allow_config_change: bool = False) -> dict:
    """Train SLT-GRPO from an SFT checkpoint (`init`); returns baseline, dev and test scores.

    `out_dir` belongs to this run (`rvlf.train.run_folder.claim`): it is locked; a folder that holds a
    run needs `resume` or `overwrite`; `resume` with changed settings needs `allow_config_change`."""
    with claim(out_dir, "grpo", cfg, resume=resume, overwrite=overwrite,
               allow_config_change=allow_config_change) as folder:
        return _run(cfg, Path(out_dir), folder, max_steps=max_steps, init=init, evaluate_test=evaluate_test)


def _run(cfg: GRPOConfig, out_dir: Path, folder: Claim, *, max_steps: int | None, init: str | None,
         evaluate_test: bool) -> dict:
    resume = folder.resume
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last"
    resuming = resume and (last / "config.yaml").is_file()
    # the config, resolved once: a resumed run's model settings are its own, a new run's come from the
    # SFT checkpoint (--init); the DINOv2 width of the data must be the SFT model's
    if resuming:
        src = last
        cfg = resumed_grpo(cfg, load_config(GRPOConfig, src / "config.yaml"))
    else:
        if not init:
            raise ConfigError("grpo needs --init SFT_CHECKPOINT")
        src = ckpt.resolve_checkpoint(init)
        cfg = with_sft(cfg, load_config(SFTConfig, src / "config.yaml"))
    by_split = load_samples(cfg.data, dino_model=cfg.data.dino_model if cfg.fusion.use_face or cfg.fusion.use_hand
                            else None)
    train_set, dev_set = prepare_data(cfg, by_split)
    cfg = freeze(with_widths(cfg, dino_width(cfg, train_set)))

    if resuming:
        _, model, sft_state = load_grpo(src, cfg)
    else:
        _, sft_model = load_sft(src)
        sft_state = {k: v for k, v in ckpt.load_weights(src / ckpt.MODEL_FILE).items()}
        model = merged_policy(cfg, sft_model)
    model.cache_encoder_outputs(cfg.cache_encoder_outputs)
    base_lm_dir = None
    if (src / "base_lm" / "config.json").is_file():
        base_lm_dir = out_dir / "base_lm"
        write_base_lm(base_lm_dir, lambda folder: shutil.copytree(src / "base_lm", folder), keep_existing=resuming)
    stage = GRPOStage(cfg, model, base_lm_dir, sft_state)
    trainer = Trainer(stage, model=stage.policy, param_groups=stage.param_groups(), train_set=train_set,
                      dev_set=dev_set, collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps,
                      resume=resume, config_changes=folder.changes, old_config=folder.old_config,
                      dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    baseline = None
    if not resuming:  # the SFT model's dev scores: the baseline of the learning curve (Fig. 3)
        baseline = trainer.evaluate(trainer.dev_set).metrics
        trainer.log({f"dev_{k}": v for k, v in baseline.items()}, step=0)
        trainer.keep_best(baseline)
    summary = trainer.fit()
    summary["baseline_dev"] = baseline
    if trainer.is_main:
        plot_learning_curve(out_dir / "metrics.jsonl", out_dir / "learning_curve.png",
                            title="SLT-GRPO on dev (step 0 = SLT-SFT)")
    use_dino = cfg.fusion.use_face or cfg.fusion.use_hand
    return finish_run(trainer, stage, cfg.data, by_split, out_dir, summary, use_dino=use_dino,
                      evaluate_test=evaluate_test)
