"""Stage 2 recipe: SLT-SFT (Sec. 3.2, Table 10).

The stage-1 skeleton encoder (frozen by default), the fusion of Eq. 12 with the DINOv2 face
and hand features, the MLP projector of Eq. 13, and a causal LM (Qwen3) with LoRA on q/v,
trained on the target tokens only (Eq. 14). AdamW, weight decay 0, two learning rates (LoRA
2e-4, projector and fusion 2e-5), cosine schedule with 8 warm-up epochs, batch 4, 40 epochs.

A checkpoint holds `model.safetensors` (LoRA adapter, fusion, encoder), `config.yaml`,
`llm_tokenizer/`, and - for a random-initialised (tiny) LM that no hub has - `base_lm/`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rvlf.config import DataConfig, LLMConfig, TrainConfig, load_config, to_yaml
from rvlf.data.dataset import SignDataset, collate
from rvlf.errors import ConfigError
from rvlf.models.fusion import FusionConfig, SignFusion
from rvlf.models.skeleton import SkeletonEncoder, SkeletonEncoderConfig
from rvlf.models.slt_lm import SignLanguageLM, add_lora, build_tiny_qwen3, load_causal_lm, load_tokenizer, tiny_chat_tokenizer
from rvlf.train import checkpoint as ckpt
from rvlf.train.common import finish_run, load_samples, split_dataset
from rvlf.train.loop import Trainer, main_process_first, seed_everything

log = logging.getLogger("rvlf.sft")

SMALL_DINO_BYTES = 50 * 2**20


def _sft_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=40, batch_size=4, optimizer="adamw", lr=2e-4, weight_decay=0.0, warmup_epochs=8)


@dataclass
class SFTConfig:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: SkeletonEncoderConfig = field(default_factory=SkeletonEncoderConfig)  # replaced by --init's
    fusion: FusionConfig = field(default_factory=FusionConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    train: TrainConfig = field(default_factory=_sft_train_defaults)
    projector_lr: float = 2e-5  # Table 10: "Projector LR"
    encoder_lr: float = 2e-5  # only used with train_encoder
    train_encoder: bool = False  # the paper lists no encoder lr: frozen by default (docs/fidelity.md)
    pretrained_encoder: bool = True  # False: Table 5 "w/o Pre-training" (random skeleton encoder)
    cache_encoder_outputs: bool = False  # frozen encoder: encode each video once (memory: T x d a video)


def setting_name(cfg: SFTConfig) -> str:
    """The ablation row (Tables 5 and 6) this configuration is."""
    parts = []
    if not cfg.pretrained_encoder:
        parts.append("w/o pre-training")
    f = cfg.fusion
    if not f.use_face and not f.use_hand:
        parts.append("w/o DINOv2")
    elif not f.use_hand:
        parts.append("face only")
    elif not f.use_face:
        parts.append("hand only")
    return ", ".join(parts) or "full"


def build_language_model(llm: LLMConfig, train_texts: list[str], lang: str, base_lm_dir: Path | None = None,
                         tokenizer_dir: Path | None = None):
    """(LM without adapter, its tokenizer): a saved base, a random tiny Qwen3, or real weights."""
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
    else:
        lm = load_causal_lm(llm.name_or_path, dtype=llm.dtype)
    return lm, tokenizer


def assemble(cfg: SFTConfig, encoder: SkeletonEncoder, lm, tokenizer) -> SignLanguageLM:
    lm = add_lora(lm, r=cfg.llm.lora_r, alpha=cfg.llm.lora_alpha, dropout=cfg.llm.lora_dropout,
                  target_modules=cfg.llm.target_modules)
    cfg.fusion.sign_dim = encoder.config.d_model  # Eq. 12 adds to Z_s, so the widths agree
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
        self.trainer: Trainer | None = None

    @property
    def live(self) -> SignLanguageLM:
        return self.trainer.unwrapped if self.trainer else self.model

    def param_groups(self) -> list[dict]:
        groups = self.model.trainable_parameters()
        return [
            {"params": groups["lora"], "lr": self.cfg.train.lr},
            {"params": groups["projector"], "lr": self.cfg.projector_lr},
            {"params": groups["encoder"], "lr": self.cfg.encoder_lr},
        ]

    def train_step(self, batch: dict, trainer: Trainer) -> dict[str, float]:
        loss = trainer.model(batch["keypoints"], batch["frame_mask"], batch["dino"], batch["texts"])
        trainer.optimize(loss)
        return {"loss": float(loss.detach())}

    def translate(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        out = self.live.generate(batch["keypoints"], batch["frame_mask"], batch["dino"], num_beams=num_beams,
                                 max_new_tokens=max_new_tokens)
        return out.texts

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.live.state_dict_for_checkpoint()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.live.load_checkpoint_state(state)

    def save_extra(self, directory: Path) -> None:
        self.live.tokenizer.save_pretrained(str(directory / "llm_tokenizer"))
        if self.base_lm_dir is not None:
            shutil.copytree(self.base_lm_dir, directory / "base_lm")
        dino = Path(self.cfg.data.dino_model)
        if dino.is_dir() and sum(f.stat().st_size for f in dino.rglob("*") if f.is_file()) < SMALL_DINO_BYTES:
            shutil.copytree(dino, directory / "dinov2")  # a small local DINOv2 travels with the checkpoint

    def config_yaml(self) -> str:
        return f"stage: {self.name}\n" + to_yaml(self.cfg)


def encoder_from_stage1(init: str | Path, cfg: SFTConfig) -> SkeletonEncoder:
    """The stage-1 skeleton encoder (`encoder.*` weights) of a pre-training checkpoint."""
    from rvlf.train.pretrain import PretrainConfig

    directory = ckpt.resolve_checkpoint(init)
    pcfg = load_config(PretrainConfig, directory / "config.yaml")
    cfg.encoder = pcfg.model.encoder
    encoder = SkeletonEncoder(cfg.encoder)
    if cfg.pretrained_encoder:
        weights = ckpt.load_weights(directory / ckpt.MODEL_FILE)
        enc = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
        if not enc:
            raise ConfigError(f"{directory}: no encoder.* weights - is this a stage-1 (pretrain) checkpoint?")
        encoder.load_state_dict(enc)
    return encoder


def _dino_dim(dataset: SignDataset) -> int | None:
    item = dataset[0]
    return int(item["dino"].shape[-1]) if "dino" in item else None


def prepare_data(cfg, by_split) -> tuple[SignDataset, SignDataset]:
    use_dino = cfg.fusion.use_face or cfg.fusion.use_hand
    train_set = split_dataset(cfg.data, by_split, "train", use_dino=use_dino)
    dev_set = split_dataset(cfg.data, by_split, "dev", use_dino=use_dino)
    if use_dino:
        dim = _dino_dim(train_set)
        if dim is None:
            raise ConfigError("the feature files hold no DINOv2 features (extracted with --no-features?); "
                              "run `rvlf extract` with features, or train with --no-dino")
        cfg.fusion.dino_dim = dim
    return train_set, dev_set


def run(cfg: SFTConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True) -> dict:
    """Train SLT-SFT from a stage-1 checkpoint (`init`); returns dev/test scores."""
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = out_dir / "last"
    if resume and (last / "config.yaml").is_file():
        # everything a resumed run needs (encoder shape, tokenizer, base LM) is in its own checkpoint
        cfg.encoder = load_config(SFTConfig, last / "config.yaml").encoder
        encoder = SkeletonEncoder(cfg.encoder)
    elif init:
        encoder = encoder_from_stage1(init, cfg)
    else:
        if cfg.pretrained_encoder:
            raise ConfigError("sft needs --init STAGE1_CHECKPOINT (or --no-pretrain for a random encoder)")
        encoder = SkeletonEncoder(cfg.encoder)
    by_split = load_samples(cfg.data)
    train_set, dev_set = prepare_data(cfg, by_split)
    texts = [s.text for s in train_set.samples]
    src = last if resume and (last / "config.yaml").is_file() else None
    lm, tokenizer = build_language_model(cfg.llm, texts, cfg.data.language(),
                                         base_lm_dir=src / "base_lm" if src else None,
                                         tokenizer_dir=src / "llm_tokenizer" if src else None)
    base_lm_dir = None
    if cfg.llm.tiny:  # a random LM exists nowhere else: keep its weights with every checkpoint
        base_lm_dir = out_dir / "base_lm"
        with main_process_first():
            if not (base_lm_dir / "config.json").is_file():
                lm.save_pretrained(str(base_lm_dir))
    model = assemble(cfg, encoder, lm, tokenizer)
    model.cache_encoder_outputs(cfg.cache_encoder_outputs)
    stage = SignLMStage(cfg, model, base_lm_dir)
    trainer = Trainer(stage, model=model, param_groups=stage.param_groups(), train_set=train_set, dev_set=dev_set,
                      collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps, resume=resume,
                      dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    stage.trainer = trainer
    summary = trainer.fit()
    summary["setting"] = setting_name(cfg)
    use_dino = cfg.fusion.use_face or cfg.fusion.use_hand
    return finish_run(trainer, stage, cfg.data, by_split, out_dir, summary, use_dino=use_dino,
                      evaluate_test=evaluate_test)


def load_sft(directory: str | Path) -> tuple[SFTConfig, SignLanguageLM]:
    """An SFT checkpoint folder -> (config, model with its LoRA, fusion and encoder weights)."""
    directory = ckpt.resolve_checkpoint(directory)
    cfg = load_config(SFTConfig, directory / "config.yaml")
    lm, tokenizer = build_language_model(cfg.llm, [], cfg.data.language(), base_lm_dir=directory / "base_lm",
                                         tokenizer_dir=directory / "llm_tokenizer")
    model = assemble(cfg, SkeletonEncoder(cfg.encoder), lm, tokenizer)
    model.load_checkpoint_state(ckpt.load_weights(directory / ckpt.MODEL_FILE))
    return cfg, model
