"""The sign-language LM of stages 2 and 3, as the recipes build, train, save and reload it.

A component shared by the SLT-SFT and SLT-GRPO recipes and by checkpoint loading (no recipe
imports another): the causal LM and its tokenizer from a config (`build_language_model`), the
SFT model (`assemble`: LoRA on the LM, fusion of Eq. 12 and projector of Eq. 13 around the
skeleton encoder), the merged-SFT policy of stage 3 (`merged_policy`), the stage object the
training shell drives (`SignLMStage`), the stage-1 encoder (`encoder_from_stage1`), the
train/dev datasets (`prepare_data`) and the checkpoint loaders (`load_sft`, `load_grpo`).

An SFT checkpoint holds `model.safetensors` (LoRA adapter, fusion, encoder), `config.yaml`,
`llm_tokenizer/`, and - for an LM that no hub has (a random-initialised tiny one, or a small local
one the config marks `llm.keep_base`, like the demo's pretrained LM) - `base_lm/`; a GRPO
checkpoint also holds the SFT adapter (`sft.*` weights) so that the merged base can be rebuilt.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import torch
from accelerate import PartialState

from rvlf import atomic
from rvlf.config import LLMConfig, load_config, to_yaml
from rvlf.data.dataset import SignDataset
from rvlf.errors import ConfigError
from rvlf.models.fusion import SignFusion
from rvlf.models.skeleton import SkeletonEncoder
from rvlf.models.slt_lm import (SignLanguageLM, add_lora, build_tiny_qwen3, load_causal_lm, load_tokenizer,
                                merge_lora, tiny_chat_tokenizer)
from rvlf.train import checkpoint as ckpt
from rvlf.train.common import split_dataset
from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig
from rvlf.train.reproducibility import main_process_first
from rvlf.train.stage import Step
from rvlf.train.training_data import write_record

SMALL_DINO_BYTES = 50 * 2**20
LM_DTYPES = ("auto", "float32", "float16", "bfloat16")


def build_language_model(llm: LLMConfig, train_texts: list[str], lang: str, base_lm_dir: Path | None = None,
                         tokenizer_dir: Path | None = None):
    """(LM without adapter, its tokenizer): a saved base, a random tiny Qwen3, or real weights.

    The LM is in `llm.dtype` whichever way it is made (a tiny random LM's parameters are cast to it,
    its buffers kept as `from_pretrained` keeps them, so that it trains as exactly the model it is
    saved and reloaded as); "auto" keeps the weights' own dtype (float32 for a tiny LM)."""
    if llm.dtype not in LM_DTYPES:
        raise ConfigError(f"llm.dtype must be one of {', '.join(LM_DTYPES)}, got {llm.dtype!r}")
    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(str(tokenizer_dir))
    elif llm.tiny:
        tokenizer = tiny_chat_tokenizer(train_texts, lang)
    else:
        tokenizer = load_tokenizer(llm.name_or_path)
    if base_lm_dir is not None and (base_lm_dir / "config.json").is_file():
        lm = load_causal_lm(str(base_lm_dir), dtype=llm.dtype)
    elif llm.tiny:
        lm = build_tiny_qwen3(tokenizer, **llm.tiny)
        if llm.dtype != "auto":  # the parameters only: buffers (rotary `inv_freq`) stay float32, as
            dtype = getattr(torch, llm.dtype)  # `from_pretrained` keeps them when the saved base is reloaded
            for param in lm.parameters():
                param.data = param.data.to(dtype)
    else:
        lm = load_causal_lm(llm.name_or_path, dtype=llm.dtype)
    return lm, tokenizer


def write_base_lm(target: Path, save: Callable[[Path], None], *, keep_existing: bool) -> None:
    """The run's own copy of its base LM (`base_lm/`, copied into every checkpoint), written by
    `save(folder)` (a path not yet made) on the main process. A new run replaces whatever an earlier run left in `target`
    (another LM: e.g. the demo's base LM after its corpus or settings changed); a resumed run
    (`keep_existing`) keeps its copy. Written into a temporary folder beside `target` and swapped in
    (`rvlf.atomic.write_dir`): never half a folder, the old copy kept until the new one is whole; an
    OS error raises `WriteError` naming `target`."""
    with main_process_first():
        if not PartialState().is_main_process or (keep_existing and (target / "config.json").is_file()):
            return
        shutil.rmtree(target.with_name(target.name + ".tmp"), ignore_errors=True)  # an older rvlf's untagged name

        def fill(tmp: Path) -> None:
            tmp.rmdir()  # `save` makes the folder itself (`shutil.copytree` must)
            save(tmp)

        atomic.write_dir(target, fill, "the run's copy of the base LM")


def assemble(cfg: SFTConfig, encoder: SkeletonEncoder, lm, tokenizer) -> SignLanguageLM:
    """The SFT model: LoRA on `lm` (Table 10), fusion + projector (Eqs. 12-13) sized to `encoder` and `lm`."""
    lm = add_lora(lm, r=cfg.llm.lora_r, alpha=cfg.llm.lora_alpha, dropout=cfg.llm.lora_dropout,
                  target_modules=cfg.llm.target_modules)
    if cfg.fusion.sign_dim != encoder.config.d_model:  # Eq. 12 adds to Z_s: resolved by recipe_configs.with_widths
        raise ConfigError(f"fusion.sign_dim ({cfg.fusion.sign_dim}) must equal the skeleton encoder's d_model "
                          f"({encoder.config.d_model})")
    fusion = SignFusion(cfg.fusion, lm.config.hidden_size)
    model = SignLanguageLM(encoder, fusion, lm, tokenizer, max_new_tokens=cfg.llm.max_new_tokens)
    model.freeze_encoder(not cfg.train_encoder)
    if cfg.train.grad_checkpointing:
        enable_grad_checkpointing(lm)
    return model


def enable_grad_checkpointing(lm) -> None:
    """Recompute the LM's layer activations in backward (`--grad-checkpointing`)."""
    lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lm.config.use_cache = False


class SignLMStage:
    """How the shell trains, decodes and saves a `SignLanguageLM` (stages 2 and 3 share this)."""

    name = "sft"

    def __init__(self, cfg, model: SignLanguageLM, base_lm_dir: Path | None):
        self.cfg = cfg
        self.lang = cfg.data.language()
        self.model = model
        self.base_lm_dir = base_lm_dir

    def param_groups(self) -> list[dict]:
        groups = self.model.trainable_parameters()
        return [
            {"params": groups["lora"], "lr": self.cfg.train.lr},
            {"params": groups["projector"], "lr": self.cfg.projector_lr},
            {"params": groups["encoder"], "lr": self.cfg.encoder_lr},
        ]

    def train_step(self, batch: dict, step: Step) -> dict[str, float]:
        loss = step.model(batch["keypoints"], batch["frame_mask"], batch["dino"], batch["texts"])
        step.optimize(loss)
        return {"loss": float(loss.detach())}

    def decode(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        out = self.model.generate(batch["keypoints"], batch["frame_mask"], batch["dino"], num_beams=num_beams,
                                 max_new_tokens=max_new_tokens)
        return out.texts

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict_for_checkpoint()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_checkpoint_state(state)

    def save_extra(self, directory: Path) -> None:
        write_record(directory, self.cfg)  # what the model was trained on (notices in translate, API, app)
        self.model.tokenizer.save_pretrained(str(directory / "llm_tokenizer"))
        if self.base_lm_dir is not None:
            shutil.copytree(self.base_lm_dir, directory / "base_lm")
        dino = Path(self.cfg.data.dino_model)
        if dino.is_dir() and sum(f.stat().st_size for f in dino.rglob("*") if f.is_file()) < SMALL_DINO_BYTES:
            shutil.copytree(dino, directory / "dinov2")  # a small local DINOv2 travels with the checkpoint

    def config_yaml(self) -> str:
        return f"stage: {self.name}\n" + to_yaml(self.cfg)


def stage1_config(init: str | Path) -> tuple[Path, PretrainConfig]:
    """(checkpoint folder, its config) of a stage-1 checkpoint (`--init` of SFT)."""
    directory = ckpt.resolve_checkpoint(init)
    return directory, load_config(PretrainConfig, directory / "config.yaml")


def encoder_from_stage1(directory: Path, cfg: SFTConfig) -> SkeletonEncoder:
    """The skeleton encoder of `cfg.encoder` (resolved from the stage-1 checkpoint by
    `recipe_configs.with_stage1_encoder`) with that checkpoint's `encoder.*` weights when `cfg.pretrained_encoder`."""
    encoder = SkeletonEncoder(cfg.encoder)
    if cfg.pretrained_encoder:
        weights = ckpt.load_weights(directory / ckpt.MODEL_FILE)
        enc = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
        if not enc:
            raise ConfigError(f"{directory}: no encoder.* weights - is this a stage-1 (pretrain) checkpoint?")
        encoder.load_state_dict(enc)
    return encoder


def dino_width(cfg, train_set: SignDataset) -> int | None:
    """The DINOv2 width `D` of the training features (`dino [T,3,D]`), None when the fusion uses none.
    Raises `ConfigError` when the fusion needs DINOv2 and the feature files hold none."""
    if not (cfg.fusion.use_face or cfg.fusion.use_hand):
        return None
    item = train_set[0]
    if "dino" not in item:
        raise ConfigError("the feature files hold no DINOv2 features (extracted with --no-features?); "
                          "run `rvlf extract` with features, or train with --no-dino")
    return int(item["dino"].shape[-1])


def prepare_data(cfg, by_split) -> tuple[SignDataset, SignDataset]:
    """The train and dev datasets (with DINOv2 features when the fusion uses them)."""
    use_dino = cfg.fusion.use_face or cfg.fusion.use_hand
    train_set = split_dataset(cfg.data, by_split, "train", use_dino=use_dino)
    dev_set = split_dataset(cfg.data, by_split, "dev", use_dino=use_dino)
    return train_set, dev_set


def load_sft(directory: str | Path) -> tuple[SFTConfig, SignLanguageLM]:
    """An SFT checkpoint folder -> (config, model with its LoRA, fusion and encoder weights)."""
    directory = ckpt.resolve_checkpoint(directory)
    cfg = load_config(SFTConfig, directory / "config.yaml")
    lm, tokenizer = build_language_model(cfg.llm, [], cfg.data.language(), base_lm_dir=directory / "base_lm",
                                         tokenizer_dir=directory / "llm_tokenizer")
    model = assemble(cfg, SkeletonEncoder(cfg.encoder), lm, tokenizer)
    model.load_checkpoint_state(ckpt.load_weights(directory / ckpt.MODEL_FILE))
    return cfg, model


def merged_policy(cfg: GRPOConfig, sft_model: SignLanguageLM) -> SignLanguageLM:
    """Merge the SFT adapter, add the stage-3 adapter, freeze everything else."""
    lm = add_lora(merge_lora(sft_model.lm), r=cfg.llm.lora_r, alpha=cfg.llm.lora_alpha,
                  dropout=cfg.llm.lora_dropout, target_modules=cfg.llm.target_modules)
    policy = SignLanguageLM(sft_model.encoder, sft_model.fusion, lm, sft_model.tokenizer,
                            max_new_tokens=cfg.grpo.max_new_tokens)
    policy.freeze_encoder(True)
    for p in policy.fusion.parameters():
        p.requires_grad_(False)
    if cfg.train.grad_checkpointing:
        enable_grad_checkpointing(lm)
    return policy


def load_grpo(directory: str | Path, cfg: GRPOConfig | None = None) -> tuple[GRPOConfig, SignLanguageLM, dict]:
    """A GRPO checkpoint folder -> (config, policy with its weights, the SFT adapter state). `cfg`: the
    resolved config to build with (a resumed run's, `recipe_configs.resumed_grpo`); default the folder's own."""
    directory = ckpt.resolve_checkpoint(directory)
    if cfg is None:
        cfg = load_config(GRPOConfig, directory / "config.yaml")
    weights = ckpt.load_weights(directory / ckpt.MODEL_FILE)
    lm, tokenizer = build_language_model(cfg.sft_llm, [], cfg.data.language(), base_lm_dir=directory / "base_lm",
                                         tokenizer_dir=directory / "llm_tokenizer")
    sft_cfg = SFTConfig(data=cfg.data, encoder=cfg.encoder, fusion=cfg.fusion, llm=cfg.sft_llm)
    sft_model = assemble(sft_cfg, SkeletonEncoder(cfg.encoder), lm, tokenizer)
    sft_state = {k[4:]: v for k, v in weights.items() if k.startswith("sft.")}
    sft_model.load_checkpoint_state(sft_state)
    policy = merged_policy(cfg, sft_model)
    policy.load_checkpoint_state({k: v for k, v in weights.items() if not k.startswith("sft.")})
    return cfg, policy, sft_state
