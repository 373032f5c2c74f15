"""Load any stage's checkpoint for decoding (`rvlf evaluate`, `rvlf translate`)."""

from __future__ import annotations

from pathlib import Path

from rvlf.inference import model_folder as exported
from rvlf.inference.model_folder import hf_progress_bars_off
from rvlf.train import checkpoint as ckpt
from rvlf.train.sign_lm import SignLMStage, load_grpo, load_sft
from rvlf.train.stage_config import load_stage_config, stage_name
from rvlf.train.vlp_stage import PretrainStage, load_pretrained

__all__ = ["hf_progress_bars_off", "load_stage", "load_stage_config"]


def load_stage(directory: str | Path):
    """A checkpoint folder of any stage, or an exported model folder (`rvlf.inference.model_folder`) ->
    (stage object with `translate`, its model, its config)."""
    with hf_progress_bars_off():
        return _load_stage(directory)


def _load_stage(directory: str | Path):
    directory = ckpt.resolve_checkpoint(directory)
    stage = stage_name(directory)
    if stage in ("sft", "grpo") and exported.is_exported(directory) \
            and exported.read_info(directory).get("language_model") == "merged":
        obj, cfg = exported.load_merged(directory)
    elif stage == "pretrain":
        cfg, model, tokenizer = load_pretrained(directory)
        obj = PretrainStage(cfg, tokenizer, model)
    elif stage == "sft":
        cfg, model = load_sft(directory)
        obj = SignLMStage(cfg, model, None)
    else:
        cfg, model, _ = load_grpo(directory)
        obj = SignLMStage(cfg, model, None)
        obj.name = "grpo"
    obj.model.eval()
    return obj, obj.model, cfg
