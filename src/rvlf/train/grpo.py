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

import torch
from torch import nn

from rvlf.data.dataset import collate
from rvlf.errors import ConfigError
from rvlf.models.slt_lm import SignLanguageLM
from rvlf.rl.grpo import flat_groups, group_advantages, grpo_loss_terms
from rvlf.rl.rewards import translation_reward
from rvlf.train import checkpoint as ckpt
from rvlf.train.common import finish_run, load_samples
from rvlf.train.configs import GRPOConfig, SFTConfig
from rvlf.train.loop import Trainer
from rvlf.train.plots import plot_learning_curve
from rvlf.train.reproducibility import seed_everything
from rvlf.train.sharding import gathered
from rvlf.train.sign_lm import SignLMStage, load_grpo, load_sft, merged_policy, prepare_data, write_base_lm

log = logging.getLogger("rvlf.grpo")


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

    @property
    def live(self) -> SignLanguageLM:
        return self.trainer.unwrapped.sign_lm if self.trainer else self.model

    def param_groups(self) -> list[dict]:
        return [{"params": self.model.trainable_parameters()["lora"], "lr": self.cfg.train.lr}]

    def train_step(self, batch: dict, trainer: Trainer) -> dict[str, float]:
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
        policy = self.live
        kp, fm, dino = batch["keypoints"], batch["frame_mask"], batch["dino"]
        policy.eval()  # sample without dropout
        with gathered(trainer.model):  # FSDP: the root unit whole outside forward (rvlf.train.sharding)
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

        def inputs(rows: slice, cols: slice) -> tuple:
            d = dino[cols] if dino is not None else None
            return kp[cols], fm[cols], d, ids[rows], mask[rows], input_of[rows] - cols.start

        policy.train()
        ref_logps: list[torch.Tensor | None] = [None] * len(chunks)
        if g.beta != 0.0:
            with torch.no_grad(), policy.adapter_disabled(), gathered(trainer.model):  # the adapter (and its dropout) off: the SFT model
                for j, (rows, cols) in enumerate(chunks):
                    a, b, c, i, m, r = inputs(rows, cols)
                    ref_logps[j] = policy.completion_logprobs(a, b, c, i, m, temperature=temp, rows=r)
        old_logps: list[torch.Tensor | None] = [None] * len(chunks)
        tokens = mask.sum().clamp(min=1).float()
        stats: dict[str, float] = {}
        for update in range(g.mu):
            total = torch.zeros((), device=kp.device)
            sums = {"kl": 0.0, "clip_low": 0.0, "clip_high": 0.0, "clip": 0.0, "ratio": 0.0}
            for j, (rows, cols) in enumerate(chunks):
                a, b, c, i, m, r = inputs(rows, cols)
                logps = trainer.model(a, b, c, i, m, r, temp)
                if old_logps[j] is None:
                    old_logps[j] = logps.detach()
                loss, terms = grpo_loss_terms(logps, old_logps[j], ref_logps[j], advantages[rows], m,
                                              epsilon=g.epsilon, beta=g.beta)
                share = (rows.stop - rows.start) / n  # the un-split loss is the mean over all n completions
                trainer.backward(loss * share, sync=j == len(chunks) - 1)
                total = total + loss.detach() * share
                weight = float(m.sum()) / float(tokens)  # the statistics are means over all real tokens
                for name in sums:
                    sums[name] += terms[name] * weight
            trainer.update(total, schedule=update == g.mu - 1)  # one lr-schedule step per training step
            stats = {"loss": float(total), **sums}
        all_rewards = trainer.accelerator.gather(rewards)
        all_flat = trainer.accelerator.gather(flat)
        stats.update(reward_mean=float(all_rewards.mean()), reward_std=float(all_rewards.std()) if all_rewards.numel() > 1 else 0.0,
                     flat_group_share=float(all_flat.mean()), completion_length=float(mask.sum(dim=1).float().mean()))
        return stats

    def model_state(self) -> dict[str, torch.Tensor]:
        state = self.live.state_dict_for_checkpoint()
        state.update({f"sft.{k}": v for k, v in self.sft_state.items()})
        return state

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.live.load_checkpoint_state({k: v for k, v in state.items() if not k.startswith("sft.")})


def _from_sft(cfg: GRPOConfig, sft_cfg: SFTConfig) -> None:
    cfg.encoder, cfg.fusion, cfg.sft_llm = sft_cfg.encoder, sft_cfg.fusion, sft_cfg.llm
    cfg.llm.name_or_path, cfg.llm.tiny, cfg.llm.dtype = sft_cfg.llm.name_or_path, sft_cfg.llm.tiny, sft_cfg.llm.dtype
    cfg.llm.keep_base = sft_cfg.llm.keep_base


def run(cfg: GRPOConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True) -> dict:
    """Train SLT-GRPO from an SFT checkpoint (`init`); returns baseline, dev and test scores."""
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last"
    resuming = resume and (last / "config.yaml").is_file()
    if resuming:
        data, train, grpo = cfg.data, cfg.train, cfg.grpo
        cfg, model, sft_state = load_grpo(last)
        cfg.data, cfg.train, cfg.grpo = data, train, grpo
        src = last
    else:
        if not init:
            raise ConfigError("grpo needs --init SFT_CHECKPOINT")
        init_dir = ckpt.resolve_checkpoint(init)
        sft_cfg, sft_model = load_sft(init_dir)
        _from_sft(cfg, sft_cfg)
        sft_state = {k: v for k, v in ckpt.load_weights(init_dir / ckpt.MODEL_FILE).items()}
        model = merged_policy(cfg, sft_model)
        src = init_dir
    model.cache_encoder_outputs(cfg.cache_encoder_outputs)
    base_lm_dir = None
    if (src / "base_lm" / "config.json").is_file():
        base_lm_dir = out_dir / "base_lm"
        write_base_lm(base_lm_dir, lambda folder: shutil.copytree(src / "base_lm", folder), keep_existing=resuming)
    by_split = load_samples(cfg.data, dino_model=cfg.data.dino_model if cfg.fusion.use_face or cfg.fusion.use_hand
                            else None)
    train_set, dev_set = prepare_data(cfg, by_split)
    stage = GRPOStage(cfg, model, base_lm_dir, sft_state)
    trainer = Trainer(stage, model=stage.policy, param_groups=stage.param_groups(), train_set=train_set,
                      dev_set=dev_set, collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps,
                      resume=resume, dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    stage.trainer = trainer
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
