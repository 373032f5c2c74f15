"""The sign language LLM of stages 2 and 3: skeleton encoder + fusion + a causal LM with LoRA (Sec. 3.2-3.3).

Each sample is the token sequence

    [chat prefix: system instruction (Sec. 6.3), user turn start] [Z: projected sign features]
    [user turn end, assistant turn start (Qwen3: thinking disabled)] [target tokens] [<|im_end|>]

fed to the LM through `inputs_embeds` (the sign features sit where the user's message would be,
Eq. 13's `Z` "prepended" to the text). Batches are left-padded so every sequence ends at the right
edge: the target tokens and generated tokens line up, and `logits_to_keep` limits the LM head to them.
The SFT loss (Eq. 14) is the token-mean cross-entropy over the target tokens only. For GRPO (Eqs.
16-19) the module samples groups of completions and scores given completions token by token.
"""

from __future__ import annotations

import hashlib
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from rvlf.errors import RvlfError
from rvlf.hubcheck import is_local, use_cache_if_hub_unreachable
from rvlf.models.vlp import sequence_scores
from rvlf.text.tokenizer import build_corpus_tokenizer

INSTRUCTION = (
    "A conversation between a deaf person and an AI assistant. The assistant can generate accurate and fluent"
    " translated text based on provided sign language visual information."
)
DEFAULT_LM = "Qwen/Qwen3-8B"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# Qwen-style ChatML for the tiny test / demo LM (no thinking block: the tiny LM has no <think> tokens).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}"
)
_SIGNS = "<<<RVLF_SIGN_FEATURES>>>"  # stands for the sign embeddings while the chat template is rendered


def load_causal_lm(
    name_or_path: str = DEFAULT_LM, dtype: torch.dtype | str | None = None, device_map=None
) -> nn.Module:
    """Load any `transformers` causal LM (hub id or local folder), e.g. Qwen3-8B (Sec. 3.2)."""
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    use_cache_if_hub_unreachable(name_or_path)  # no network: the cache in seconds, not a minute of retries
    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, device_map=device_map)
    except (OSError, ValueError) as e:
        raise RvlfError(f"cannot load causal LM {name_or_path!r}: {str(e).splitlines()[0]}{_fetch_hint(name_or_path)}"
                        ) from e


def load_tokenizer(name_or_path: str = DEFAULT_LM):
    """The LM's tokenizer (hub id or local folder)."""
    use_cache_if_hub_unreachable(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise RvlfError(f"cannot load tokenizer {name_or_path!r}: {str(e).splitlines()[0]}{_fetch_hint(name_or_path)}"
                        ) from e


def _fetch_hint(name_or_path) -> str:
    return "" if is_local(name_or_path) else (f" (a hub id: download it once with `hf download {name_or_path}` "
                                              "or set llm.name_or_path to a local folder)")


def tiny_chat_tokenizer(texts: Sequence[str], lang: str, instruction: str = INSTRUCTION):
    """A corpus tokenizer with ChatML special tokens and `CHAT_TEMPLATE`, for the tiny / demo LM.

    Its vocabulary covers `texts`, the instruction and the chat roles, so the prompt has no `<unk>`."""
    corpus = list(texts) + [instruction, "system user assistant"]
    return build_corpus_tokenizer(corpus, lang, extra_special_tokens=[IM_START, IM_END], chat_template=CHAT_TEMPLATE)


def build_tiny_qwen3(
    tokenizer,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
    init_std: float = 0.2,
) -> nn.Module:
    """A randomly initialised `Qwen3ForCausalLM` over `tokenizer`'s vocabulary (tests and the demo).

    `init_std` is larger than Qwen's 0.02: with tiny, frozen, tied embeddings of std 0.02 the logits
    stay nearly uniform whatever LoRA learns; 0.2 lets the tiny model become confident."""
    stop = _stop_ids(tokenizer)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=init_std,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop[0],
        pad_token_id=_pad_id(tokenizer),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = stop
    model.generation_config.pad_token_id = config.pad_token_id
    return model


def add_lora(
    lm: nn.Module,
    r: int = 16,
    alpha: int = 32,
    dropout: float = 0.3,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
) -> nn.Module:
    """Wrap `lm` in a peft LoRA adapter (Table 10: r 16, alpha 32, dropout 0.3 on q/v; Table 11: 64/128/0.05).

    The base weights are frozen; only the adapter trains."""
    # peft: only where a LoRA adapter is handled (`rvlf plan-memory` builds these models without peft)
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type="CAUSAL_LM", r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules)
    )
    with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing`: not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(lm, config)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold a LoRA adapter into its base weights and return the plain base model (Sec. 6.3, before GRPO)."""
    # peft: only where a LoRA adapter is handled (`rvlf plan-memory` builds these models without peft)
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise RvlfError("merge_lora: the language model has no LoRA adapter to merge")
    return model.merge_and_unload()


def _eos_list(value) -> list[int]:
    """An `eos_token_id` setting (None, an int or a list of ints) as a list."""
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _stop_ids(tokenizer, generation_config=None) -> list[int]:
    """The stop set: tokens that end an answer, `<|im_end|>` first (it closes every SFT target).

    `<|im_end|>` when the vocabulary has it, then the tokenizer's eos, then every id of the LM's
    `generation_config.eos_token_id` (an int or a list: Qwen3 lists `<|im_end|>` and `<|endoftext|>`).
    Sampling, beam search and the GRPO log-prob pass all end a completion at the first of them."""
    ids: list[int] = []
    im_end = tokenizer.convert_tokens_to_ids(IM_END) if IM_END in tokenizer.get_vocab() else None
    gen_eos = _eos_list(getattr(generation_config, "eos_token_id", None)) if generation_config is not None else []
    for i in (im_end, tokenizer.eos_token_id, *gen_eos):
        if i is not None and i not in ids:
            ids.append(int(i))
    if not ids:
        raise RvlfError("the tokenizer has neither <|im_end|> nor an eos token to end a translation")
    return ids


def first_stop_mask(ids: torch.Tensor, mask: torch.Tensor, stop_ids: Sequence[int]) -> torch.Tensor:
    """`mask [N,L]` cut after the first stop token of each row (the stop token itself is kept).

    Tokens after the first stop (padding, or anything a caller appended) are never scored."""
    mask = mask.bool()
    is_stop = torch.isin(ids, torch.tensor(list(stop_ids), device=ids.device)) & mask
    before_or_at = (is_stop.long().cumsum(dim=1) - is_stop.long()) == 0
    return mask & before_or_at


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else _stop_ids(tokenizer)[-1]


@dataclass(frozen=True)
class PromptTokens:
    """Token ids around the sign embeddings, and the answer's end token(s)."""

    prefix: list[int]
    suffix: list[int]
    stop_ids: list[int]  # stop_ids[0] closes every target during training


def build_prompt(tokenizer, instruction: str = INSTRUCTION, generation_config=None) -> PromptTokens:
    """Split the chat-templated prompt (Sec. 6.3) at the user's message, where the sign embeddings go.

    With a chat template: system = instruction, user = signs, then the assistant turn start with
    `enable_thinking=False` (Qwen3's empty think block). Without one: `[bos] instruction \\n signs`.
    `stop_ids` is the stop set of `_stop_ids(tokenizer, generation_config)`."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": _SIGNS}]
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        if text.count(_SIGNS) != 1:
            raise RvlfError("the tokenizer's chat template does not place the user message exactly once")
        before, _, after = text.partition(_SIGNS)
        prefix = tokenizer(before, add_special_tokens=False)["input_ids"]
        suffix = tokenizer(after, add_special_tokens=False)["input_ids"]
    else:
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        prefix = bos + tokenizer(instruction + "\n", add_special_tokens=False)["input_ids"]
        suffix = []
    return PromptTokens(prefix=list(prefix), suffix=list(suffix), stop_ids=_stop_ids(tokenizer, generation_config))


class GenerationOutput(NamedTuple):
    texts: list[str]  # N = B * num_return_sequences, grouped per input
    completion_ids: torch.Tensor  # [N,L] long, pad after the end token
    completion_mask: torch.Tensor  # [N,L] bool, True up to and including the end token
    scores: torch.Tensor | None = None  # [N] float with return_scores: mean log-probability per token


class TokenOutput(NamedTuple):
    loss: torch.Tensor  # scalar, Eq. 14 (mean over target tokens)
    logits: torch.Tensor  # [B,K,V]: logits[:, i] predicts labels[:, i]
    labels: torch.Tensor  # [B,K] target ids, -100 elsewhere


class _Batch(NamedTuple):
    embeds: torch.Tensor  # [B,L,H]
    attention_mask: torch.Tensor  # [B,L] long
    ids: torch.Tensor  # [B,L] token ids (pad at sign positions)
    tail: torch.Tensor  # [B,L] bool, the tokens after the prompt


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class SignLanguageLM(nn.Module):
    """Encoder -> fusion (Eqs. 12-13) -> causal LM (Eq. 14). The encoder starts frozen (`freeze_encoder`)."""

    def __init__(
        self,
        encoder: nn.Module,
        fusion: nn.Module,
        lm: nn.Module,
        tokenizer,
        *,
        instruction: str = INSTRUCTION,
        max_new_tokens: int = 64,
    ):
        super().__init__()
        self.encoder = encoder
        self.fusion = fusion
        self.lm = lm
        self.tokenizer = tokenizer
        self.instruction = instruction
        self.max_new_tokens = max_new_tokens
        self.prompt = build_prompt(tokenizer, instruction, getattr(lm, "generation_config", None))
        self.pad_id = _pad_id(tokenizer)
        self.encoder_frozen = True
        self._encoder_cache: dict[bytes, torch.Tensor] | None = None
        self.freeze_encoder(True)

    # ---- parameters -------------------------------------------------------------------------
    def freeze_encoder(self, frozen: bool = True) -> None:
        """Freeze (default, and kept in eval mode: deterministic features) or unfreeze the skeleton encoder."""
        self.encoder_frozen = frozen
        if self._encoder_cache:
            self._encoder_cache.clear()
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)
        self.encoder.train(self.training and not frozen)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.train(mode and not self.encoder_frozen)
        return self

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """AdamW groups (Table 10): `lora` (LM, lr 2e-4), `projector` (fusion + MLP, lr 2e-5), `encoder`."""
        return {
            "lora": [p for p in self.lm.parameters() if p.requires_grad],
            "projector": [p for p in self.fusion.parameters() if p.requires_grad],
            "encoder": [p for p in self.encoder.parameters() if p.requires_grad],
        }

    def adapter_disabled(self) -> AbstractContextManager:
        """Context in which the LM runs without its LoRA adapter: GRPO's reference policy (Eq. 18)."""
        if not hasattr(self.lm, "disable_adapter"):
            raise RvlfError("the language model has no LoRA adapter to disable")
        return self.lm.disable_adapter()

    # ---- inputs -----------------------------------------------------------------------------
    def encode_signs(
        self, keypoints: torch.Tensor, frame_mask: torch.Tensor, dino: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 1, 12, 13: `Z [B,T,H]` in the LM's embedding space and its frame mask `[B,T]`."""
        if self._encoder_cache is not None and self.encoder_frozen:
            z_s, mask = self._cached_encoder(keypoints, frame_mask)
        else:
            z_s, mask = self.encoder(keypoints, frame_mask)
        if dino is not None:
            dino = dino[:, : z_s.shape[1]]  # the encoder may cut long videos (max_frames)
        z = self.fusion(z_s, dino)
        return z.to(self.lm.get_input_embeddings().weight.dtype), mask.bool()

    def cache_encoder_outputs(self, enabled: bool = True) -> None:
        """Keep the frozen encoder's `Z_s` per video (keyed by a digest of its keypoints), so each
        video is encoded once per run instead of once per epoch. Only while the encoder is frozen
        (then it is deterministic, in eval mode); memory grows with the dataset (T x d floats a video)."""
        self._encoder_cache = {} if enabled else None

    @torch.no_grad()
    def _cached_encoder(self, keypoints: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self._encoder_cache
        limit = getattr(getattr(self.encoder, "config", None), "max_frames", keypoints.shape[1])
        keypoints, mask = keypoints[:, :limit], frame_mask[:, :limit].bool()
        lengths = mask.sum(dim=1).tolist()
        keys = [hashlib.blake2b(keypoints[b, :n].detach().cpu().numpy().tobytes(), digest_size=16).digest()
                for b, n in enumerate(lengths)]
        missing = [b for b, k in enumerate(keys) if k not in cache]
        if missing:
            width = max(lengths[b] for b in missing)
            z_new, _ = self.encoder(keypoints[missing, :width], mask[missing, :width])
            for row, b in enumerate(missing):
                cache[keys[b]] = z_new[row, : lengths[b]].clone()
        sample = cache[keys[0]]
        z_s = sample.new_zeros(keypoints.shape[0], keypoints.shape[1], sample.shape[-1])
        for b, k in enumerate(keys):
            z_s[b, : lengths[b]] = cache[k]
        return z_s, mask

    def _assemble(self, signs: torch.Tensor, mask: torch.Tensor, tails: Sequence[Sequence[int]]) -> _Batch:
        """Left-padded `[prefix][signs of real frames][suffix][tail]` sequences as input embeddings."""
        prefix, suffix = self.prompt.prefix, self.prompt.suffix
        n_signs = mask.sum(dim=1).tolist()
        lengths = [len(prefix) + n + len(suffix) + len(t) for n, t in zip(n_signs, tails)]
        width = max(lengths)
        ids = torch.full((len(tails), width), self.pad_id, dtype=torch.long)
        is_sign = torch.zeros((len(tails), width), dtype=torch.bool)
        tail = torch.zeros_like(is_sign)
        for b, (n, t, length) in enumerate(zip(n_signs, tails, lengths)):
            start = width - length
            row = prefix + [self.pad_id] * n + suffix + list(t)
            ids[b, start:] = torch.tensor(row, dtype=torch.long)
            s0 = start + len(prefix)
            is_sign[b, s0 : s0 + n] = True
            if t:
                tail[b, width - len(t) :] = True
        device = signs.device
        ids, is_sign, tail = ids.to(device), is_sign.to(device), tail.to(device)
        starts = width - torch.tensor(lengths, device=device)
        attention_mask = (torch.arange(width, device=device) >= starts[:, None]).long()
        embeds = self.lm.get_input_embeddings()(ids)
        embeds = embeds.masked_scatter(is_sign[..., None], signs[mask])
        return _Batch(embeds, attention_mask, ids, tail)

    def _target_ids(self, texts: Sequence[str]) -> list[list[int]]:
        end = self.prompt.stop_ids[0]
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [end] for t in texts]

    # ---- SFT ----------------------------------------------------------------------------------
    def token_outputs(
        self, keypoints: torch.Tensor, frame_mask: torch.Tensor, dino: torch.Tensor | None, texts: Sequence[str]
    ) -> TokenOutput:
        """Teacher-forced logits over the target tokens, their labels and the Eq. 14 loss."""
        signs, mask = self.encode_signs(keypoints, frame_mask, dino)
        batch = self._assemble(signs, mask, self._target_ids(texts))
        k = int(batch.tail.sum(dim=1).max())
        out = self.lm(
            inputs_embeds=batch.embeds,
            attention_mask=batch.attention_mask,
            position_ids=_position_ids(batch.attention_mask),
            logits_to_keep=k + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1]
        labels = batch.ids[:, -k:].masked_fill(~batch.tail[:, -k:], -100)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        return TokenOutput(loss, logits, labels)

    def forward(
        self, keypoints: torch.Tensor, frame_mask: torch.Tensor, dino: torch.Tensor | None, texts: Sequence[str]
    ) -> torch.Tensor:
        """Eq. 14: cross-entropy of the target tokens given the instruction and the sign features."""
        return self.token_outputs(keypoints, frame_mask, dino, texts).loss

    # ---- decoding -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        keypoints: torch.Tensor,
        frame_mask: torch.Tensor,
        dino: torch.Tensor | None,
        *,
        num_beams: int = 5,
        do_sample: bool = False,
        num_return_sequences: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int | None = None,
        share_prefix: bool = True,
        return_scores: bool = False,
    ) -> GenerationOutput:
        """Beam search (evaluation, width 5) or sampling (GRPO groups) with the LM's KV cache.

        Outputs are grouped per input: rows `i*k .. i*k+k-1` belong to input `i`. A completion ends at
        its first stop token (`_stop_ids`). Sampling several sequences per input (`share_prefix`, the
        default) prefills each prompt once - all its positions but the last - and repeats that KV cache
        for its `k` samples, instead of prefilling `k` copies; `transformers` then runs the usual
        sampling loop from the prompt's last position (same logits processors, same `multinomial`
        draws in the same order, so the same texts for a fixed seed up to float rounding).
        `share_prefix=False` is the plain `generate(num_return_sequences=k)` (benchmarks, tests).
        Beam search returns each input's rows best first. `return_scores`: also each row's mean
        natural-log probability per generated token, the end token included (beam search's
        length-normalised score; `rvlf.models.vlp.sequence_scores`)."""
        signs, mask = self.encode_signs(keypoints, frame_mask, dino)
        batch = self._assemble(signs, mask, [[]] * signs.shape[0])
        stop = self.prompt.stop_ids
        k = num_return_sequences
        # explicit sampling settings override the LM's own defaults (Qwen3 ships top_k 20, temperature 0.6)
        sampling = dict(temperature=temperature, top_p=top_p, top_k=top_k) if do_sample else {}
        common = dict(max_new_tokens=max_new_tokens or self.max_new_tokens, num_beams=num_beams, do_sample=do_sample,
                      repetition_penalty=1.0, length_penalty=1.0, eos_token_id=stop, pad_token_id=self.pad_id,
                      use_cache=True, return_dict_in_generate=return_scores, output_scores=return_scores,
                      **sampling)
        embeds, attention_mask = batch.embeds, batch.attention_mask
        if share_prefix and do_sample and num_beams == 1 and k > 1 and embeds.shape[1] > 1:
            cache = self._prefill(embeds[:, :-1], attention_mask[:, :-1])
            cache.batch_repeat_interleave(k)
            seqs = self.lm.generate(inputs_embeds=embeds.repeat_interleave(k, dim=0),
                                    attention_mask=attention_mask.repeat_interleave(k, dim=0), cache=cache,
                                    num_return_sequences=1, **common)
        else:
            seqs = self.lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, num_return_sequences=k,
                                    **common)
        res, seqs = (seqs, seqs.sequences) if return_scores else (None, seqs)
        completion_mask = first_stop_mask(seqs, torch.ones_like(seqs, dtype=torch.bool), stop)
        is_stop = torch.isin(seqs, torch.tensor(stop, device=seqs.device))
        completion_ids = seqs.masked_fill(~completion_mask, self.pad_id)
        texts = [
            self.tokenizer.decode(row[keep].tolist(), skip_special_tokens=True).strip()
            for row, keep in zip(completion_ids, completion_mask & ~is_stop)
        ]
        scores = None
        if res is not None:
            scores = sequence_scores(self.lm, res, completion_mask)
        return GenerationOutput(texts, completion_ids, completion_mask, scores)

    def _prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor):
        """The LM's KV cache (a `DynamicCache`) of left-padded `embeds [B,L,H]`, positions counted
        from each row's first real token as `generate` counts them."""
        out = self.lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=_position_ids(attention_mask),
                      use_cache=True, logits_to_keep=1)
        cache = getattr(out, "cache", None)
        if cache is None:  # older transformers name it past_key_values
            cache = out.past_key_values
        return cache

    def completion_logprobs(
        self,
        keypoints: torch.Tensor,
        frame_mask: torch.Tensor,
        dino: torch.Tensor | None,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        repeats: int = 1,
        temperature: float = 1.0,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-token `log pi(o_t | q, o_<t)` `[N,L]` of given completions (0 on padding), for Eqs. 18-19.

        Input `i` is repeated `repeats` times: completion rows `i*repeats ..` belong to input `i`; or
        `rows [N]` (long) names each completion's input (a GRPO micro-batch that cuts across groups).
        `pi` is the policy that sampled at `temperature`: `log_softmax(logits / temperature)` over the
        whole vocabulary (as TRL's GRPOTrainer: top-k / top-p shape sampling only). A row's mask ends
        at its first stop token (`_stop_ids`); later positions score 0."""
        signs, mask = self.encode_signs(keypoints, frame_mask, dino)
        if rows is None:
            rows = torch.arange(signs.shape[0], device=signs.device).repeat_interleave(repeats)
        if rows.shape[0] != completion_ids.shape[0]:
            raise ValueError(f"{signs.shape[0]} inputs x {repeats} repeats != {completion_ids.shape[0]} completions")
        signs, mask = signs[rows.to(signs.device)], mask[rows.to(signs.device)]
        batch = self._assemble(signs, mask, [[]] * signs.shape[0])
        completion_mask = first_stop_mask(completion_ids, completion_mask, self.prompt.stop_ids)
        embeds = torch.cat([batch.embeds, self.lm.get_input_embeddings()(completion_ids)], dim=1)
        attention_mask = torch.cat([batch.attention_mask, completion_mask.long()], dim=1)
        out = self.lm(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=_position_ids(attention_mask),
            logits_to_keep=completion_ids.shape[1] + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1]
        # one sequence at a time: a full [N,L,V] float32 log-softmax would not fit for large vocabularies
        logps = torch.stack(
            [
                (row.float() / temperature).log_softmax(dim=-1).gather(-1, ids[:, None]).squeeze(-1)
                for row, ids in zip(logits, completion_ids)
            ]
        )
        return logps.masked_fill(~completion_mask, 0.0)

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict_for_checkpoint(self) -> dict[str, torch.Tensor]:
        """`lora.*` (the adapter only, not the frozen base LM), `fusion.*` and `encoder.*` tensors."""
        # peft: only where a LoRA adapter is handled (`rvlf plan-memory` builds these models without peft)
        from peft import PeftModel, get_peft_model_state_dict

        sd: dict[str, torch.Tensor] = {}
        if isinstance(self.lm, PeftModel):
            sd.update({f"lora.{k}": v for k, v in get_peft_model_state_dict(self.lm).items()})
        sd.update({f"fusion.{k}": v for k, v in self.fusion.state_dict().items()})
        sd.update({f"encoder.{k}": v for k, v in self.encoder.state_dict().items()})
        return {k: v.detach().contiguous() for k, v in sd.items()}

    def load_checkpoint_state(self, sd: dict[str, torch.Tensor]) -> None:
        """Load what `state_dict_for_checkpoint` saved; any missing or unknown tensor is an error."""
        # peft: only where a LoRA adapter is handled (`rvlf plan-memory` builds these models without peft)
        from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict

        parts: dict[str, dict[str, torch.Tensor]] = {"lora": {}, "fusion": {}, "encoder": {}}
        for key, value in sd.items():
            head, _, rest = key.partition(".")
            if head not in parts:
                raise RvlfError(f"checkpoint tensor {key!r} belongs to no part of the sign language model")
            parts[head][rest] = value
        if isinstance(self.lm, PeftModel):
            expected = set(get_peft_model_state_dict(self.lm))
            if set(parts["lora"]) != expected:
                missing, extra = sorted(expected - set(parts["lora"])), sorted(set(parts["lora"]) - expected)
                raise RvlfError(
                    f"checkpoint LoRA adapter does not match the model (missing {missing[:3]}, unexpected {extra[:3]})"
                )
            set_peft_model_state_dict(self.lm, parts["lora"])
        elif parts["lora"]:
            raise RvlfError("checkpoint holds a LoRA adapter but the language model has none (call add_lora first)")
        for name in ("fusion", "encoder"):
            try:
                getattr(self, name).load_state_dict(parts[name], strict=True)
            except RuntimeError as e:
                raise RvlfError(f"checkpoint {name} weights do not match the model: {str(e).splitlines()[0]}") from e
        if self._encoder_cache:
            self._encoder_cache.clear()
