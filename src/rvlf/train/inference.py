"""Load any stage's checkpoint for decoding (`rvlf evaluate`, `rvlf translate`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rvlf.config import read_yaml
from rvlf.errors import InputFileError
from rvlf.train import checkpoint as ckpt


@contextmanager
def hf_progress_bars_off() -> Iterator[None]:
    """transformers' progress bars ("Loading weights", "Writing model shards") off inside: one bar
    for every model loaded or written is noise in `rvlf translate`, `rvlf export` and the API."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def load_stage(directory: str | Path):
    """A checkpoint folder of any stage, or an exported model folder (`rvlf.train.exported`) ->
    (stage object with `translate`, its model, its config)."""
    with hf_progress_bars_off():
        return _load_stage(directory)


def load_stage_config(directory: str | Path):
    """The config of a checkpoint folder of any stage (or an exported model folder), without loading
    its weights: what `rvlf translate` and `rvlf evaluate` need to check their inputs before the
    model is loaded.

    Raises InputFileError when the folder has no config.yaml or names an unknown stage."""
    from rvlf.config import load_config
    from rvlf.train.configs import GRPOConfig, PretrainConfig, SFTConfig

    directory = ckpt.resolve_checkpoint(directory)
    classes = {"pretrain": PretrainConfig, "sft": SFTConfig, "grpo": GRPOConfig}
    return load_config(classes[_stage_name(directory)], directory / "config.yaml")


def _stage_name(directory: Path) -> str:
    """`stage` of a resolved checkpoint folder's config.yaml: pretrain, sft or grpo (else InputFileError)."""
    if not (directory / "config.yaml").is_file():
        raise InputFileError(directory, "checkpoint has no config.yaml")
    stage = read_yaml(directory / "config.yaml").get("stage")
    if stage not in ("pretrain", "sft", "grpo"):
        raise InputFileError(directory / "config.yaml", f"unknown stage {stage!r} (pretrain, sft or grpo)")
    return stage


def _load_stage(directory: str | Path):
    directory = ckpt.resolve_checkpoint(directory)
    stage = _stage_name(directory)
    from rvlf.train import exported

    if stage in ("sft", "grpo") and exported.is_exported(directory) \
            and exported.read_info(directory).get("language_model") == "merged":
        obj, cfg = exported.load_merged(directory)
    elif stage == "pretrain":
        from rvlf.train.vlp_stage import PretrainStage, load_pretrained

        cfg, model, tokenizer = load_pretrained(directory)
        obj = PretrainStage(cfg, tokenizer, model)
    elif stage == "sft":
        from rvlf.train.sign_lm import SignLMStage, load_sft

        cfg, model = load_sft(directory)
        obj = SignLMStage(cfg, model, None)
    else:
        from rvlf.train.sign_lm import SignLMStage, load_grpo

        cfg, model, _ = load_grpo(directory)
        obj = SignLMStage(cfg, model, None)
        obj.name = "grpo"
    obj.model.eval()
    return obj, obj.model, cfg
