"""Stage 1 recipe: visual-language pre-training (Sec. 3.1, Table 9).

`L_pt = L_con + L_slt` (Eq. 11) on (keypoints, text) pairs; SGD lr 0.01, weight decay 0.001,
cosine schedule with 10% warm-up, batch 8, 200 epochs; dev evaluation with beam search 5 and
the best-dev-BLEU-4 checkpoint kept. The checkpoint's `encoder.*` weights initialise stage 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rvlf.config import DataConfig, TrainConfig, to_yaml
from rvlf.models.vlp import VLPConfig, VLPModel
from rvlf.errors import ConfigError
from rvlf.text.tokenizer import SLTTokenizer, build_corpus_tokenizer, trim_mbart_tokenizer
from rvlf.train import checkpoint as ckpt
from rvlf.train.common import finish_run, load_samples, split_dataset
from rvlf.train.loop import Trainer, seed_everything
from rvlf.data.dataset import collate

log = logging.getLogger("rvlf.pretrain")


@dataclass
class TokenizerConfig:
    """`corpus`: built from the training texts (offline); `mbart`: a trimmed mBART tokenizer."""

    kind: str = "mbart"
    name_or_path: str = "facebook/mbart-large-cc25"


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: VLPConfig = field(default_factory=VLPConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class PretrainStage:
    """The stage-1 model and how the shell trains, decodes and saves it."""

    name = "pretrain"

    def __init__(self, cfg: PretrainConfig, tokenizer: SLTTokenizer, model: VLPModel | None = None):
        self.cfg = cfg
        self.lang = cfg.data.language()
        self.tokenizer = tokenizer
        self.model = model or VLPModel(cfg.model, tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id,
                                       tokenizer.eos_id)
        self.trainer: Trainer | None = None

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def train_step(self, batch: dict, trainer: Trainer) -> dict[str, float]:
        ids, attn = self.tokenizer.batch_encode(batch["texts"], max_length=self.cfg.data.max_text_tokens)
        ids, attn = ids.to(batch["keypoints"].device), attn.to(batch["keypoints"].device)
        out = trainer.model(keypoints=batch["keypoints"], frame_mask=batch["frame_mask"],
                            input_ids=ids, attention_mask=attn)
        trainer.optimize(out["loss"])
        return {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1}

    def translate(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        model = self.trainer.unwrapped if self.trainer else self.model
        tokens = model.generate(batch["keypoints"], batch["frame_mask"], num_beams=num_beams,
                                max_new_tokens=max_new_tokens)
        return self.tokenizer.batch_decode(tokens)

    def model_state(self) -> dict[str, torch.Tensor]:
        model = self.trainer.unwrapped if self.trainer else self.model
        return model.state_dict()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        model = self.trainer.unwrapped if self.trainer else self.model
        model.load_state_dict(state)

    def save_extra(self, directory: Path) -> None:
        self.tokenizer.save(directory / "tokenizer")

    def config_yaml(self) -> str:
        return "stage: pretrain\n" + to_yaml(self.cfg)


def make_tokenizer(cfg: PretrainConfig, train_texts: list[str]) -> SLTTokenizer:
    """The paper's trimmed mBART vocabulary (Sec. 6.3), or one built from the corpus (offline)."""
    if cfg.tokenizer.kind == "mbart":
        return SLTTokenizer(trim_mbart_tokenizer(cfg.tokenizer.name_or_path, train_texts))
    if cfg.tokenizer.kind == "corpus":
        return SLTTokenizer(build_corpus_tokenizer(train_texts, cfg.data.language()))
    raise ConfigError(f"tokenizer.kind: {cfg.tokenizer.kind!r} is not one of mbart, corpus")


def load_pretrained(directory: str | Path) -> tuple[PretrainConfig, VLPModel, SLTTokenizer]:
    """A stage-1 checkpoint folder -> (config, model with its weights, tokenizer)."""
    from rvlf.config import load_config

    directory = ckpt.resolve_checkpoint(directory)
    cfg = load_config(PretrainConfig, directory / "config.yaml")
    tokenizer = SLTTokenizer.load(directory / "tokenizer")
    model = VLPModel(cfg.model, tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
    model.load_state_dict(ckpt.load_weights(directory / ckpt.MODEL_FILE))
    return cfg, model, tokenizer


def run(cfg: PretrainConfig, out_dir: str | Path, *, max_steps: int | None = None, resume: bool = False,
        init: str | None = None, evaluate_test: bool = True) -> dict:
    """Train stage 1; returns dev/test scores. `init` continues from another stage-1 checkpoint's weights."""
    seed_everything(cfg.train.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_split = load_samples(cfg.data)
    train_set = split_dataset(cfg.data, by_split, "train", use_dino=False)
    dev_set = split_dataset(cfg.data, by_split, "dev", use_dino=False)
    if resume and (out_dir / "last" / "tokenizer").exists():
        tokenizer = SLTTokenizer.load(out_dir / "last" / "tokenizer")
    else:
        tokenizer = make_tokenizer(cfg, [s.text for s in train_set.samples])
    stage = PretrainStage(cfg, tokenizer)
    if init:
        _, init_model, _ = load_pretrained(init)
        stage.model.load_state_dict(init_model.state_dict())
    trainer = Trainer(stage, model=stage.model, param_groups=stage.param_groups(), train_set=train_set,
                      dev_set=dev_set, collate_fn=collate, cfg=cfg.train, out_dir=out_dir, max_steps=max_steps,
                      resume=resume, dev_max_samples=cfg.data.dev_max_samples, num_workers=cfg.data.num_workers)
    stage.trainer = trainer
    summary = trainer.fit()
    return finish_run(trainer, stage, cfg.data, by_split, out_dir, summary, use_dino=False,
                      evaluate_test=evaluate_test)
