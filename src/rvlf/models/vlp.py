"""Stage 1: visual-language pre-training (Sec. 3.1, Eqs. 3-11, Table 9).

* `fine_grained_similarity` (Eqs. 3-6) and `contrastive_loss` (Eqs. 7-9).
* `VLPModel`: the skeleton encoder (Eq. 1), an mBART text encoder (Eq. 2) and decoder
  (Eq. 10, cross-attending `Z_s`) built from `transformers`' mBART architecture with 3 + 3
  randomly initialised layers, MLP projections to the contrastive space (1024), a trainable
  log-parameterised temperature, and `L_pt = L_con + L_slt` (Eq. 11).

Under `torch.distributed`, negatives come from the global batch: features are gathered from
every process with the local slice kept differentiable (as open_clip does), and every process
computes the full global similarity matrices.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers import GenerationConfig, MBartConfig, MBartForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput

from rvlf.errors import RvlfError
from rvlf.models.configs import SkeletonEncoderConfig, VLPConfig  # noqa: F401 - re-exported
from rvlf.models.skeleton import SkeletonEncoder


def fine_grained_similarity(
    f_s: torch.Tensor, f_t: torch.Tensor, mask_s: torch.Tensor, mask_t: torch.Tensor, tau: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global similarities `(Z_S2T, Z_T2S)`, each `[B_s, B_t]` resp. `[B_t, B_s]` (Eqs. 3-6).

    `f_s [B_s,M,D]`, `f_t [B_t,L,D]` (L2-normalised here), masks bool (True = real position).
    `Z_S2T[b, c]`: for each real frame i of skeleton b, softmax over the real tokens j of text
    c of `E_ij / tau` (Eq. 4) weights `E_ij` (Eq. 5); mean over the real frames (Eq. 6).
    `Z_T2S[c, b]`: symmetric, softmax over the real frames, mean over the real tokens.
    Padded positions never change a value.
    """
    f_s, f_t = F.normalize(f_s.float(), dim=-1), F.normalize(f_t.float(), dim=-1)  # fp32 under autocast too
    sim = torch.einsum("bmd,cld->bcml", f_s, f_t)  # E for every (skeleton b, text c): [B_s,B_t,M,L]
    ms = mask_s[:, None, :, None]  # [B_s,1,M,1]
    mt = mask_t[None, :, None, :]  # [1,B_t,1,L]
    logits = sim / tau
    neg = torch.finfo(sim.dtype).min
    # Eqs. 4-5 along the text tokens, then Eq. 6 over the frames (and the symmetric direction)
    e_s2t = (logits.masked_fill(~mt, neg).softmax(dim=3) * sim).sum(dim=3)  # [B_s,B_t,M]
    e_t2s = (logits.masked_fill(~ms, neg).softmax(dim=2) * sim).sum(dim=2)  # [B_s,B_t,L]
    n_s = mask_s.sum(1).clamp(min=1).to(sim.dtype)
    n_t = mask_t.sum(1).clamp(min=1).to(sim.dtype)
    z_s2t = (e_s2t * mask_s[:, None, :]).sum(-1) / n_s[:, None]
    z_t2s = (e_t2s * mask_t[None, :, :]).sum(-1) / n_t[None, :]
    return z_s2t, z_t2s.t()


def contrastive_loss(
    z_s2t: torch.Tensor, z_t2s: torch.Tensor, tau_prime: float, beta: float
) -> torch.Tensor:
    """`beta * L_S2T + (1 - beta) * L_T2S` (Eqs. 7-9): cross-entropy of each row over the batch at
    temperature `tau_prime`, the matching pair (the diagonal) as the target."""
    targets = torch.arange(z_s2t.shape[0], device=z_s2t.device)
    l_s2t = F.cross_entropy(z_s2t / tau_prime, targets)
    l_t2s = F.cross_entropy(z_t2s / tau_prime, targets)
    return beta * l_s2t + (1.0 - beta) * l_t2s


def gather_features(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All processes' `x [B,N,D]` and `mask [B,N]`, padded to the longest `N`, concatenated in rank
    order; this process's slice keeps its gradient (the others are constants).

    Every process computes the same global loss, but only its own slice is differentiable, and DDP
    then averages the gradients over the W processes: the local slice's gradient is scaled by W
    (value unchanged) so that the averaged gradient equals the single-process gradient of the
    global batch."""
    length = torch.tensor([x.shape[1]], device=x.device)
    dist.all_reduce(length, op=dist.ReduceOp.MAX)
    pad = int(length) - x.shape[1]
    x, mask = F.pad(x, (0, 0, 0, pad)), F.pad(mask, (0, pad), value=False)
    xs = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    ms = [torch.empty_like(mask) for _ in range(dist.get_world_size())]
    dist.all_gather(xs, x.detach().contiguous())
    dist.all_gather(ms, mask.contiguous())
    world = dist.get_world_size()
    xs[dist.get_rank()] = x * world - x.detach() * (world - 1)
    return torch.cat(xs), torch.cat(ms)


class VLPModel(nn.Module):
    """Skeleton encoder + mBART text encoder/decoder, trained with `L_con + L_slt` (Eq. 11)."""

    def __init__(self, config: VLPConfig, vocab_size: int, pad_id: int, bos_id: int, eos_id: int):
        super().__init__()
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.encoder = SkeletonEncoder(config.encoder)
        if config.encoder.d_model != config.d_model:
            raise ValueError(f"encoder.d_model {config.encoder.d_model} != d_model {config.d_model}")
        mbart = MBartConfig(
            vocab_size=vocab_size,
            d_model=config.d_model,
            encoder_layers=config.text_layers,
            decoder_layers=config.decoder_layers,
            encoder_attention_heads=config.num_heads,
            decoder_attention_heads=config.num_heads,
            encoder_ffn_dim=config.ff_dim,
            decoder_ffn_dim=config.ff_dim,
            dropout=config.dropout,
            attention_dropout=config.dropout,
            activation_dropout=config.dropout,
            encoder_layerdrop=0.0,
            decoder_layerdrop=0.0,
            max_position_embeddings=config.max_text_len,
            pad_token_id=pad_id,
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            decoder_start_token_id=bos_id,
            forced_eos_token_id=None,
        )
        self.mbart = MBartForConditionalGeneration(mbart)
        self.skeleton_proj = self._mlp(config.d_model, config.contrastive_dim)
        self.text_proj = self._mlp(config.d_model, config.contrastive_dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(config.tau_init)))

    @staticmethod
    def _mlp(d_in: int, d_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))

    @property
    def tau(self) -> torch.Tensor:
        """The Eq. 4 temperature, kept >= 0.01 (as CLIP caps its logit scale at 100)."""
        return self.log_tau.exp().clamp(min=0.01)

    def forward(self, keypoints: torch.Tensor, frame_mask: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 11, `L_pt = L_con + L_slt`. `keypoints [B,T,77,3]`, `frame_mask [B,T]`; `input_ids [B,L]`: the
        target tokens ending with `</s>`, right-padded. Returns the losses (`loss`, `loss_con`, `loss_slt`)."""
        if input_ids.shape[1] > self.config.max_text_len:
            raise RvlfError(f"text of {input_ids.shape[1]} tokens is longer than max_text_len "
                            f"{self.config.max_text_len} (truncate it, or raise model.max_text_len)")
        z_s, mask_s = self.encoder(keypoints, frame_mask)
        mask_t = attention_mask.bool()
        z_t = self.encode_text(input_ids, attention_mask)
        f_s, f_t = self.skeleton_proj(z_s), self.text_proj(z_t)
        if self.config.gather_negatives and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            f_s, mask_s_all = gather_features(f_s, mask_s)
            f_t, mask_t_all = gather_features(f_t, mask_t)
        else:
            mask_s_all, mask_t_all = mask_s, mask_t
        tau = self.tau
        z_s2t, z_t2s = fine_grained_similarity(f_s, f_t, mask_s_all, mask_t_all, tau)
        loss_con = contrastive_loss(z_s2t, z_t2s, self.config.tau_prime, self.config.beta)
        loss_slt = self.translation_loss(z_s, mask_s, input_ids, mask_t)
        return {"loss": loss_con + loss_slt, "loss_con": loss_con, "loss_slt": loss_slt, "tau": tau.detach()}

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 2: `Z_t [B,L,d_model]` from the mBART text encoder (`input_ids`, `attention_mask` `[B,L]`)."""
        return self.mbart.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def translation_loss(self, z_s: torch.Tensor, mask_s: torch.Tensor, input_ids: torch.Tensor,
                         mask_t: torch.Tensor) -> torch.Tensor:
        """Eq. 10: token-mean cross-entropy of the target `input_ids [B,L]` (real where `mask_t`) given
        `Z_s [B,T,d_model]` (real frames where `mask_s [B,T]`); the decoder reads `<s> y_1 .. y_{L-1}`."""
        decoder_input_ids = torch.cat([torch.full_like(input_ids[:, :1], self.bos_id), input_ids[:, :-1]], dim=1)
        decoder_input_ids = decoder_input_ids.masked_fill(decoder_input_ids == -100, self.pad_id)
        logits = self.mbart(
            encoder_outputs=BaseModelOutput(last_hidden_state=z_s),
            attention_mask=mask_s.long(),
            decoder_input_ids=decoder_input_ids,
        ).logits
        labels = input_ids.masked_fill(~mask_t, -100)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)

    @torch.no_grad()
    def generate(self, keypoints: torch.Tensor, frame_mask: torch.Tensor, num_beams: int = 5,
                 max_new_tokens: int = 64, *, num_return_sequences: int = 1,
                 return_scores: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Beam search from `Z_s`: `[N,L]` token ids without the start token, each row cut after its
        first `</s>` and right-padded with `<pad>`. At most `max_text_len - 1` new tokens.

        `num_return_sequences` (<= `num_beams`) hypotheses per input, best first: rows `i*k .. i*k+k-1`
        belong to input `i` (N = B * k). With `return_scores` also `[N]` float scores, the mean natural-log
        probability per generated token, `</s>` included (`sequence_scores`)."""
        z_s, mask_s = self.encoder(keypoints, frame_mask)
        gen = GenerationConfig(
            num_beams=num_beams,
            num_return_sequences=num_return_sequences,
            return_dict_in_generate=return_scores,
            output_scores=return_scores,
            do_sample=False,
            max_new_tokens=min(max_new_tokens, self.config.max_text_len - 1),
            decoder_start_token_id=self.bos_id,
            bos_token_id=self.bos_id,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            early_stopping=num_beams > 1,
            suppress_tokens=[self.pad_id, self.bos_id],
        )
        res = self.mbart.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=z_s),
            attention_mask=mask_s.long(),
            generation_config=gen,
        )
        out = (res.sequences if return_scores else res)[:, 1:]
        after_eos = (out == self.eos_id).long().cumsum(1) - (out == self.eos_id).long() > 0
        out = out.masked_fill(after_eos, self.pad_id)
        if return_scores:
            return out, sequence_scores(self.mbart, res, ~after_eos)
        return out


def sequence_scores(model: nn.Module, res, keep: torch.Tensor) -> torch.Tensor:
    """`[N]` mean natural-log probability per generated token of a `transformers` `generate(...,
    return_dict_in_generate=True, output_scores=True)` result: beam search's own length-normalised
    `sequences_scores` (length penalty 1: sum of token log-probabilities / generated length), else
    (greedy or sampling) the same mean over the generated tokens where `keep [N,L]` is True."""
    if getattr(res, "sequences_scores", None) is not None:
        return res.sequences_scores.float()
    steps = model.compute_transition_scores(res.sequences, res.scores, normalize_logits=True).float()
    keep = keep[:, : steps.shape[1]].to(steps.device)
    return torch.where(keep, steps, torch.zeros_like(steps)).sum(1) / keep.sum(1).clamp(min=1)
