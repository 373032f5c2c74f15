"""Memory plan of one training step, from the stage configs alone (no weights are read).

Parameters are COUNTED on models instantiated on `torch.device("meta")` (the skeleton encoder /
VLP model, the fusion and projector, the causal LM via `AutoModelForCausalLM.from_config`); the
LoRA count walks the meta LM's linear layers as peft matches `target_modules`. Activations are a
stated estimate (below). All numbers are bytes for ONE process; `MemoryPlan.per_gpu` adds the
sharding of DDP, ZeRO-2 and ZeRO-3 / FSDP FULL_SHARD.

Bytes per parameter. Trainable parameters stay float32 under `accelerate` mixed precision
(autocast): 4 (weight) + 4 (gradient) + optimizer state (AdamW 8, SGD with momentum 4). Frozen
parameters cost their storage dtype: the LM's `llm.dtype` ("auto": the checkpoint's, bfloat16 for
Qwen3; float32 for a tiny random LM), the skeleton encoder and fusion float32.

Activations kept for backward, per token of one Qwen3 decoder layer (SDPA attention, which keeps
no `s x s` matrix; `b` = bytes of the compute dtype, 2 for fp16/bf16, 4 for fp32):
  - 2 RMSNorms, each keeps a float32 copy of its input: 2 * 4h
  - q/k RMSNorms (Qwen3), float32: 4 (a + kv) d
  - attention: q, k, v (k and v repeated to `a` heads when a padding mask is given) and its
    output: 4 b a d, plus the float32 log-sum-exp: 4 a
  - SwiGLU MLP: SiLU input and output, up projection: 3 b I
  - a frozen linear keeps nothing; a LoRA-adapted one keeps the dropout output and mask
    (b + 1) in, and the rank-r down projection b r; with dropout 0 the input, b in
  - a trainable base (full fine-tuning) also keeps the inputs of its linears: b (2h + a d + I)
This is the Korthikanti et al. (2022) accounting ("Reducing activation recomputation", 34 s h per
layer for GPT-style models) redone for frozen weights, GQA, SwiGLU and Qwen3's float32 norms.
With gradient checkpointing (one checkpoint per decoder layer) only each layer's input (b h per
token) is kept, plus one layer's activations while it is recomputed. The stage-1 mBART layers use
Korthikanti's formula as published: s h (34 + 5 a s / h) b / 2 bytes per sequence and layer.

Logits: SFT keeps the `target + 1` logits per sequence in the compute dtype, their float32 copy
and the float32 log-softmax (2 + 4 + 4 bytes per vocabulary entry); GRPO's per-sequence
log-softmax keeps 2 + 4. Generation (GRPO) holds the KV cache of all `batch x num_generations`
sequences, 2 L kv d b bytes per token, plus the cache of the `batch` prompts (each prompt is
prefilled once and its cache repeated for its samples) and one layer's working set of that prefill.
GRPO's reference and policy passes run `grpo.micro_batch_size` sequences at a time (0: all of
them): their activations and logits scale with the micro-batch; `MemoryPlan.largest_micro_batch`
finds the largest that fits a GPU.
A fixed `OVERHEAD_GIB` stands for the CUDA context, cuBLAS workspace and allocator slack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, Qwen3Config

from rvlf.config import LLMConfig
from rvlf.errors import ConfigError
from rvlf.models.fusion import SignFusion
from rvlf.models.skeleton import SkeletonEncoder
from rvlf.models.vlp import VLPModel
from rvlf.train.recipe_configs import STAGE_CONFIGS, load_stage_file  # noqa: F401 - STAGE_CONFIGS: the stages planned

GIB = 1024**3
OVERHEAD_GIB = 1.5
DEFAULT_PROMPT_TOKENS = 60  # chat template + system instruction around the sign features (Sec. 6.3)
DEFAULT_TEXT_VOCAB = 16000  # stage-1 trimmed mBART vocabulary / a tiny LM's corpus vocabulary
QWEN3_VOCAB = 151936
# The dense Qwen3 family, written from the published config.json files on the Hugging Face hub
# (Qwen/Qwen3-*; vocab 151936, bfloat16, rope_theta 1e6). Used when no local config is found.
QWEN3_SHAPES: dict[str, dict[str, Any]] = {
    "Qwen3-0.6B": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, intermediate_size=3072, tie_word_embeddings=True),
    "Qwen3-1.7B": dict(hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, intermediate_size=6144, tie_word_embeddings=True),
    "Qwen3-4B": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, intermediate_size=9728, tie_word_embeddings=True),
    "Qwen3-8B": dict(hidden_size=4096, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, intermediate_size=12288, tie_word_embeddings=False),
}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
OPTIMIZER_STATE_BYTES = {"adamw": 8, "sgd": 4}
SHARDINGS = ("ddp", "zero2", "zero3")


# ---- models on the meta device -------------------------------------------------------------------

def count_params(module: nn.Module, trainable: bool | None = None) -> int:
    """Number of (distinct) parameters; `trainable` selects by `requires_grad`."""
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def lm_config(llm: LLMConfig, vocab_size: int = DEFAULT_TEXT_VOCAB):
    """(transformers config, where it came from) for `llm`, without reading any weights.

    A tiny LM (`llm.tiny`) gets `build_tiny_qwen3`'s shape over `vocab_size`; otherwise a local
    folder or the hub cache (offline), else the built-in Qwen3 table by the name's last part."""
    if llm.tiny:
        t = dict(llm.tiny)
        unknown = set(t) - {"hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "seed",
                            "init_std"}
        if unknown:
            raise ConfigError(f"llm.tiny: unknown key(s) {', '.join(sorted(unknown))}")
        h, heads = t.get("hidden_size", 64), t.get("num_heads", 4)
        cfg = Qwen3Config(vocab_size=vocab_size, hidden_size=h, intermediate_size=t.get("intermediate_size", 128),
                          num_hidden_layers=t.get("num_layers", 2), num_attention_heads=heads,
                          num_key_value_heads=t.get("num_kv_heads", 2), head_dim=h // heads,
                          tie_word_embeddings=True, dtype="float32")
        return cfg, "llm.tiny"
    name = llm.name_or_path
    try:
        return AutoConfig.from_pretrained(name, local_files_only=True), f"config.json of {name}"
    except (OSError, ValueError):
        pass
    base = name.rstrip("/").split("/")[-1].lower()
    shape = next((v for k, v in QWEN3_SHAPES.items() if k.lower() == base), None)
    if shape is None:
        raise ConfigError(f"llm.name_or_path {name!r}: no local config.json and not a built-in shape "
                          f"({', '.join(QWEN3_SHAPES)})")
    return Qwen3Config(vocab_size=QWEN3_VOCAB, dtype="bfloat16", **shape), f"built-in Qwen3 table ({name})"


def meta_lm(config) -> nn.Module:
    """The causal LM of `config` with parameters on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def lora_param_count(lm: nn.Module, target_modules, r: int) -> int:
    """Parameters of a LoRA adapter of rank `r` on `lm`'s linears named like peft's `target_modules`
    (a module matches when its name is a target or ends with `.target`): r (in + out) each."""
    targets = list(target_modules)
    total = 0
    for name, mod in lm.named_modules():
        if isinstance(mod, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
            total += r * (mod.in_features + mod.out_features)
    if total == 0:
        raise ConfigError(f"llm.target_modules {targets}: no linear layer of the LM matches")
    return total


def lora_inputs(lm: nn.Module, target_modules) -> list[int]:
    """`in_features` of every adapted linear of ONE decoder layer (the first)."""
    layer = lm.model.layers[0]
    return [m.in_features for n, m in layer.named_modules()
            if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in target_modules)]


# ---- activation estimates --------------------------------------------------------------------------

@dataclass(frozen=True)
class LMShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def of(cls, config) -> "LMShape":
        heads = config.num_attention_heads
        return cls(config.hidden_size, config.num_hidden_layers, heads, config.num_key_value_heads,
                   getattr(config, "head_dim", None) or config.hidden_size // heads, config.intermediate_size,
                   config.vocab_size)


def decoder_layer_bytes_per_token(s: LMShape, b: int, lora_in: list[int] = (), r: int = 0,
                                  lora_dropout: bool = True, train_base: bool = False) -> int:
    """Activations one decoder layer keeps for backward, per token (see the module docstring)."""
    h, ad, kvd = s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim
    n = 2 * 4 * h + 4 * (ad + kvd) + 4 * b * ad + 4 * s.heads + 3 * b * s.intermediate
    for d_in in lora_in:
        n += ((b + 1) * d_in if lora_dropout else b * d_in) + b * r
    if train_base:
        n += b * (2 * h + ad + s.intermediate)
    return n


def layer_workspace_per_token(s: LMShape, b: int) -> int:
    """Peak transient memory of one layer's forward without autograd, per token."""
    return b * (3 * s.hidden + (s.heads + 2 * s.kv_heads) * s.head_dim + s.heads * s.head_dim + 3 * s.intermediate)


def lm_activation_bytes(s: LMShape, tokens: int, b: int, grad_checkpointing: bool, **lora) -> int:
    """Activations of the whole decoder stack for `tokens` tokens (batch x length)."""
    per_layer = decoder_layer_bytes_per_token(s, b, **lora) * tokens
    final_norm = 4 * s.hidden * tokens
    if grad_checkpointing:
        return s.layers * b * s.hidden * tokens + per_layer + final_norm
    return s.layers * per_layer + final_norm


def kv_cache_bytes(s: LMShape, sequences: int, length: int, b: int) -> int:
    return 2 * s.layers * s.kv_heads * s.head_dim * b * sequences * length


def korthikanti_layer_bytes(seq: int, batch: int, hidden: int, heads: int, b: int, grad_checkpointing: bool) -> int:
    """Korthikanti et al. (2022): `s b h (34 + 5 a s / h)` bytes in 16-bit, scaled to `b` bytes."""
    if grad_checkpointing:
        return seq * batch * hidden * b
    return int(seq * batch * hidden * (34 + 5 * heads * seq / hidden) * b / 2)


# ---- the plan ---------------------------------------------------------------------------------------

@dataclass
class MemoryPlan:
    """Bytes of one training step on one process: static state and the phases that follow each other."""

    stage: str
    model: str
    settings: dict[str, Any]
    counts: dict[str, int]  # parameter counts
    params: dict[str, int]  # bytes of weights: "frozen", "trainable"
    gradients: int
    optimizer: int
    phases: dict[str, dict[str, int]]  # phase -> component -> bytes (phases do not overlap)
    gathered_layer: int  # bytes of the largest wrapped layer ZeRO-3 / FSDP gathers (x2: prefetch)
    overhead: int = int(OVERHEAD_GIB * GIB)
    notes: list[str] = field(default_factory=list)
    # GRPO: the phases for a micro-batch of m sequences, and how many sequences a step has
    phases_for: Callable[[int], dict[str, dict[str, int]]] | None = field(default=None, repr=False)
    sequences: int = 0

    def largest_micro_batch(self, gpu_gib: float, num_gpus: int = 1, sharding: str = "ddp") -> int | None:
        """The largest `grpo.micro_batch_size` (1..sequences) whose step fits `gpu_gib` per GPU; 0 when
        none does (the weights alone may not fit), None for a stage without micro-batches."""
        if self.phases_for is None:
            return None
        for m in range(self.sequences, 0, -1):
            trial = dataclasses.replace(self, phases=self.phases_for(m))
            if trial.per_gpu(num_gpus, sharding)["total"] <= gpu_gib * GIB:
                return m
        return 0

    def peak_phase(self) -> tuple[str, int]:
        name = max(self.phases, key=lambda k: sum(self.phases[k].values()))
        return name, sum(self.phases[name].values())

    def per_gpu(self, num_gpus: int = 1, sharding: str = "ddp") -> dict[str, int]:
        """Components on one GPU when `num_gpus` processes train with `sharding`."""
        if sharding not in SHARDINGS:
            raise ConfigError(f"sharding must be one of {SHARDINGS}, got {sharding!r}")
        n = max(1, num_gpus)
        weights = sum(self.params.values())
        grads, opt = self.gradients, self.optimizer
        extra = 0
        if sharding == "ddp" and n > 1:
            extra = self.gradients  # DDP's gradient buckets
        if sharding in ("zero2", "zero3"):
            grads, opt = -(-grads // n), -(-opt // n)
        if sharding == "zero3":
            weights = -(-weights // n)
            extra = 2 * self.gathered_layer if n > 1 else 0
        phase, act = self.peak_phase()
        out = {"parameters": weights, "gradients": grads, "optimizer": opt, "comm_buffers": extra,
               f"peak ({phase})": act, "overhead": self.overhead}
        out["total"] = sum(out.values())
        return out

    def to_dict(self, gpu_gib: float, num_gpus: int) -> dict[str, Any]:
        gib = lambda x: round(x / GIB, 3)  # noqa: E731
        shardings = {}
        for sh in SHARDINGS:
            comp = self.per_gpu(num_gpus, sh)
            shardings[sh] = {"per_gpu_gib": {k: gib(v) for k, v in comp.items()},
                             "fits": comp["total"] <= gpu_gib * GIB}
        out = {
            "stage": self.stage, "model": self.model, "settings": self.settings, "param_counts": self.counts,
            "parameters_gib": {k: gib(v) for k, v in self.params.items()}, "gradients_gib": gib(self.gradients),
            "optimizer_gib": gib(self.optimizer),
            "phases_gib": {p: {k: gib(v) for k, v in c.items()} for p, c in self.phases.items()},
            "gpu_gib": gpu_gib, "num_gpus": num_gpus, "sharding": shardings, "notes": self.notes,
        }
        if self.phases_for is not None:
            out["largest_micro_batch"] = {sh: self.largest_micro_batch(gpu_gib, num_gpus, sh) for sh in SHARDINGS}
        return out


def _act_bytes(mixed_precision: str, storage: str) -> int:
    if mixed_precision in ("fp16", "bf16"):
        return 2
    if mixed_precision != "no":
        raise ConfigError(f"train.mixed_precision must be no, fp16 or bf16, got {mixed_precision!r}")
    return DTYPE_BYTES.get(storage, 4)


def _storage_dtype(llm: LLMConfig, config) -> str:
    if llm.dtype != "auto":
        if llm.dtype not in DTYPE_BYTES:
            raise ConfigError(f"llm.dtype must be auto, float32, float16 or bfloat16, got {llm.dtype!r}")
        return llm.dtype
    dt = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return str(dt).replace("torch.", "")


def _opt_bytes(train) -> int:
    if train.optimizer == "sgd" and not train.momentum:
        return 0
    return OPTIMIZER_STATE_BYTES.get(train.optimizer, 8)


def plan_llm_stage(cfg, stage: str, *, prompt_tokens: int = DEFAULT_PROMPT_TOKENS, target_tokens: int | None = None,
                   vocab_size: int = DEFAULT_TEXT_VOCAB) -> MemoryPlan:
    """Stage 2 (`sft`, `SFTConfig`) or stage 3 (`grpo`, `GRPOConfig`)."""
    llm, train = cfg.llm, cfg.train
    config, source = lm_config(llm, vocab_size)
    lm = meta_lm(config)
    shape = LMShape.of(config)
    with torch.device("meta"):
        encoder = SkeletonEncoder(cfg.encoder)
        fusion = SignFusion(cfg.fusion, shape.hidden)
    storage = _storage_dtype(llm, config)
    b = _act_bytes(train.mixed_precision, storage)
    n_lm = count_params(lm)
    n_lora = lora_param_count(lm, llm.target_modules, llm.lora_r)
    n_enc, n_fus = count_params(encoder), count_params(fusion)
    grpo = stage == "grpo"
    train_encoder = bool(getattr(cfg, "train_encoder", False)) and not grpo
    trainable = n_lora + (0 if grpo else n_fus) + (n_enc if train_encoder else 0)
    frozen_fp32 = (n_fus if grpo else 0) + (0 if train_encoder else n_enc)
    counts = {"lm": n_lm, "lora": n_lora, "encoder": n_enc, "fusion_projector": n_fus, "trainable": trainable}
    params = {"frozen": n_lm * DTYPE_BYTES.get(storage, 4) + frozen_fp32 * 4, "trainable": trainable * 4}
    frames = min(cfg.data.max_frames, cfg.encoder.max_frames)
    ckpt = bool(train.grad_checkpointing)
    lora_kw = dict(lora_in=lora_inputs(lm, llm.target_modules), r=llm.lora_r, lora_dropout=llm.lora_dropout > 0)
    ph = cfg.fusion.projector_hidden or shape.hidden
    batch = train.batch_size
    phases_for = None
    if grpo:
        g = cfg.grpo.num_generations
        completion = target_tokens if target_tokens is not None else cfg.grpo.max_new_tokens
        seqs = batch * g
        micro = min(cfg.grpo.micro_batch_size or seqs, seqs)
        prompt = prompt_tokens + frames
        length = prompt + completion

        def phases_for(m: int) -> dict[str, dict[str, int]]:
            logits = m * (completion + 1) * shape.vocab
            return {
                "generation": {"kv_cache": kv_cache_bytes(shape, seqs, length, b),
                               "prompt_cache": kv_cache_bytes(shape, batch, prompt, b),
                               "prefill_workspace": batch * prompt * layer_workspace_per_token(shape, b),
                               "sampling_logits": seqs * shape.vocab * 4 * 2},
                "reference pass": {"workspace": m * length * layer_workspace_per_token(shape, b),
                                   "logits": logits * b + (completion + 1) * shape.vocab * 8},
                "policy forward/backward": {
                    "activations": lm_activation_bytes(shape, m * length, b, ckpt, **lora_kw),
                    "logits": logits * (b + 4) + (completion + 1) * shape.vocab * 8,
                    "old_and_ref_logps": 2 * seqs * completion * 4},
            }

        phases = phases_for(micro)
        settings = {"batch": batch, "num_generations": g, "sequences": seqs, "micro_batch_size": micro}
    else:
        target = (target_tokens if target_tokens is not None else cfg.data.max_text_tokens) + 1  # + <|im_end|>
        seqs, length = batch, prompt_tokens + frames + target
        fusion_act = batch * frames * (3 * cfg.fusion.dino_dim * 4 + b * (cfg.fusion.sign_dim + 2 * ph))
        enc_act = 0
        if train_encoder:
            e = cfg.encoder
            enc_act = e.num_layers * korthikanti_layer_bytes(frames, batch, e.d_model, e.num_heads, b, ckpt)
        phases = {"forward/backward": {
            "activations": lm_activation_bytes(shape, seqs * length, b, ckpt, **lora_kw) + fusion_act + enc_act,
            "logits": batch * (target + 1) * shape.vocab * (b + 8)}}
        settings = {"batch": batch, "sequences": seqs}
    settings.update(sequence_length=length, sign_tokens=frames, prompt_tokens=prompt_tokens,
                    mixed_precision=train.mixed_precision, grad_checkpointing=ckpt, lm_storage_dtype=storage,
                    lora_r=llm.lora_r, lm_config=source)
    notes = [f"train.batch_size {batch} is per process: a global batch B over N GPUs is train.batch_size=B/N"]
    if train.mixed_precision == "fp16" and storage == "bfloat16":
        notes.append("llm.dtype auto loads bfloat16 weights; on fp16-only GPUs (V100) set llm.dtype=float16")
    layer0 = lm.model.layers[0]
    gathered = count_params(layer0) * DTYPE_BYTES.get(storage, 4)
    emb = lm.get_input_embeddings().weight.numel() * DTYPE_BYTES.get(storage, 4)
    return MemoryPlan(stage=stage, model=llm.name_or_path if not llm.tiny else f"tiny Qwen3 {llm.tiny}",
                      settings=settings, counts=counts, params=params, gradients=trainable * 4,
                      optimizer=trainable * _opt_bytes(train), phases=phases, gathered_layer=max(gathered, emb),
                      notes=notes, phases_for=phases_for, sequences=seqs if grpo else 0)


def plan_pretrain(cfg, *, vocab_size: int = DEFAULT_TEXT_VOCAB, target_tokens: int | None = None) -> MemoryPlan:
    """Stage 1 (`PretrainConfig`): the VLP model, fully trained."""
    m, train = cfg.model, cfg.train
    with torch.device("meta"):
        model = VLPModel(m, vocab_size, 1, 0, 2)
    n = count_params(model)
    b = _act_bytes(train.mixed_precision, "float32")
    ckpt = bool(train.grad_checkpointing)
    batch = train.batch_size
    frames = min(cfg.data.max_frames, m.encoder.max_frames)
    text = target_tokens if target_tokens is not None else cfg.data.max_text_tokens
    e = m.encoder
    gcn = batch * frames * cfg.model.encoder.num_points * sum(e.gcn_channels) * b * 4
    skel = e.num_layers * korthikanti_layer_bytes(frames, batch, e.d_model, e.num_heads, b, ckpt)
    txt = m.text_layers * korthikanti_layer_bytes(text, batch, m.d_model, m.num_heads, b, ckpt)
    dec = m.decoder_layers * (korthikanti_layer_bytes(text, batch, m.d_model, m.num_heads, b, ckpt)
                              + (0 if ckpt else int(5 * m.num_heads * text * frames * batch * b / 2)))
    contrast = batch * (frames + text) * m.contrastive_dim * b * 3 + 2 * batch * batch * frames * text * 4
    logits = batch * text * vocab_size * (b + 8)
    phases = {"forward/backward": {"activations": gcn + skel + txt + dec + contrast, "logits": logits}}
    largest = max(count_params(model.encoder), count_params(model.mbart) // max(1, m.text_layers + m.decoder_layers))
    return MemoryPlan(
        stage="pretrain", model="VLP (skeleton encoder + mBART text encoder/decoder)",
        settings={"batch": batch, "sign_tokens": frames, "text_tokens": text, "text_vocab": vocab_size,
                  "mixed_precision": train.mixed_precision, "grad_checkpointing": ckpt, "optimizer": train.optimizer},
        counts={"total": n, "encoder": count_params(model.encoder), "trainable": n},
        params={"frozen": 0, "trainable": 4 * n}, gradients=4 * n, optimizer=n * _opt_bytes(train),
        phases=phases, gathered_layer=4 * largest)


def plan(path: str, overrides: list[str] = (), *, prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
         target_tokens: int | None = None, vocab_size: int = DEFAULT_TEXT_VOCAB) -> MemoryPlan:
    """The memory plan of the stage config file `path` (its `stage:` key says which). ConfigError (one
    line naming the file) for a missing, empty or invalid file and for a `stage:` that is not pretrain,
    sft or grpo."""
    stage, cfg = load_stage_file(path, overrides)
    return plan_config(stage, cfg, prompt_tokens=prompt_tokens, target_tokens=target_tokens, vocab_size=vocab_size)


def plan_config(stage: str, cfg, *, prompt_tokens: int = DEFAULT_PROMPT_TOKENS, target_tokens: int | None = None,
                vocab_size: int = DEFAULT_TEXT_VOCAB) -> MemoryPlan:
    """The memory plan of a loaded stage config (`cfg` of `STAGE_CONFIGS[stage]`; `rvlf plan-memory`
    loads and checks it before torch is imported)."""
    if stage == "pretrain":
        return plan_pretrain(cfg, vocab_size=vocab_size, target_tokens=target_tokens)
    return plan_llm_stage(cfg, stage, prompt_tokens=prompt_tokens, target_tokens=target_tokens,
                          vocab_size=vocab_size)


def format_table(p: MemoryPlan, gpu_gib: float, num_gpus: int) -> str:
    """A readable table: parameter counts, GiB per component, per-GPU totals for each sharding."""
    g = lambda x: f"{x / GIB:9.2f}"  # noqa: E731
    s = p.settings
    lines = [f"rvlf plan-memory: {p.stage} | {p.model}",
             "  " + ", ".join(f"{k} {v}" for k, v in s.items()),
             "  parameters: " + ", ".join(f"{k} {v / 1e6:,.1f}M" for k, v in p.counts.items()), "",
             f"  {'component':<44}{'GiB':>9}"]
    rows = [("weights, frozen", p.params["frozen"]), ("weights, trainable (fp32)", p.params["trainable"]),
            ("gradients (fp32)", p.gradients), ("optimizer states", p.optimizer)]
    for phase, comps in p.phases.items():
        for k, v in comps.items():
            rows.append((f"{phase}: {k}", v))
    lines += [f"  {name:<44}{g(v)}" for name, v in rows]
    phase, peak = p.peak_phase()
    lines.append(f"  {'peak phase: ' + phase:<44}{g(peak)}")
    lines.append(f"  {'overhead (CUDA context, allocator)':<44}{g(p.overhead)}")
    lines += ["", f"  per GPU, {num_gpus} GPU(s) of {gpu_gib:g} GiB:"]
    for sh in SHARDINGS:
        comp = p.per_gpu(num_gpus, sh)
        label = {"ddp": "DDP", "zero2": "ZeRO-2", "zero3": "ZeRO-3/FSDP"}[sh]
        fits = "fits" if comp["total"] <= gpu_gib * GIB else "does NOT fit"
        lines.append(f"  {label:<12} total {comp['total'] / GIB:8.2f} GiB  -> {fits}")
    if p.phases_for is not None:
        best = {sh: p.largest_micro_batch(gpu_gib, num_gpus, sh) for sh in SHARDINGS}
        names = {"ddp": "DDP", "zero2": "ZeRO-2", "zero3": "ZeRO-3/FSDP"}
        lines.append(f"  largest grpo.micro_batch_size that fits (of {p.sequences} sequences, 0: none): "
                     + ", ".join(f"{names[sh]} {m}" for sh, m in best.items()))
    lines += [f"  note: {n}" for n in p.notes]
    return "\n".join(lines)
