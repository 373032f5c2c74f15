"""The stage-1 model as the training shell drives it and as checkpoints reload it (Sec. 3.1).

A component of the pre-training recipe and of checkpoint loading (`rvlf evaluate`, `rvlf
translate`): `PretrainStage` (train step of Eq. 11, beam-search decoding, what a checkpoint
holds), `make_tokenizer` (the trimmed mBART vocabulary of Sec. 6.3, or one built from the
corpus) and `load_pretrained`. A stage-1 checkpoint holds `model.safetensors`, `config.yaml` and
`tokenizer/`; its `encoder.*` weights initialise stage 2.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rvlf.config import load_config, to_yaml
from rvlf.errors import ConfigError
from rvlf.models.vlp import VLPModel
from rvlf.text.tokenizer import SLTTokenizer, build_corpus_tokenizer, trim_mbart_tokenizer
from rvlf.train import checkpoint as ckpt
from rvlf.train.recipe_configs import PretrainConfig
from rvlf.train.stage import Step
from rvlf.train.training_data import write_record


class PretrainStage:
    """The stage-1 model and how the shell trains, decodes and saves it."""

    name = "pretrain"

    def __init__(self, cfg: PretrainConfig, tokenizer: SLTTokenizer, model: VLPModel | None = None):
        self.cfg = cfg
        self.lang = cfg.data.language()
        self.tokenizer = tokenizer
        self.model = model or VLPModel(cfg.model, tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id,
                                       tokenizer.eos_id)

    def param_groups(self) -> list[dict]:
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def train_step(self, batch: dict, step: Step) -> dict[str, float]:
        ids, attn = self.tokenizer.batch_encode(batch["texts"], max_length=self.cfg.data.max_text_tokens)
        ids, attn = ids.to(batch["keypoints"].device), attn.to(batch["keypoints"].device)
        out = step.model(keypoints=batch["keypoints"], frame_mask=batch["frame_mask"],
                         input_ids=ids, attention_mask=attn)
        step.optimize(out["loss"])
        return {k: float(v.detach()) for k, v in out.items() if torch.is_tensor(v) and v.numel() == 1}

    def decode(self, batch: dict, num_beams: int, max_new_tokens: int) -> list[str]:
        tokens = self.model.generate(batch["keypoints"], batch["frame_mask"], num_beams=num_beams,
                                     max_new_tokens=max_new_tokens)
        return self.tokenizer.batch_decode(tokens)

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def save_extra(self, directory: Path) -> None:
        write_record(directory, self.cfg)  # what the model was trained on (notices in translate, API, app)
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
    directory = ckpt.resolve_checkpoint(directory)
    cfg = load_config(PretrainConfig, directory / "config.yaml")
    tokenizer = SLTTokenizer.load(directory / "tokenizer")
    model = VLPModel(cfg.model, tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
    model.load_state_dict(ckpt.load_weights(directory / ckpt.MODEL_FILE))
    return cfg, model, tokenizer
