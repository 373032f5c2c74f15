"""Which stage a checkpoint (or exported model) folder holds and its config, read without its weights.

What `rvlf translate` and `rvlf evaluate` check their inputs against before a model is loaded, by the one
`stage -> config class` mapping, `rvlf.train.recipe_configs.STAGE_CONFIGS`.
"""

from __future__ import annotations

from pathlib import Path

from rvlf.config import load_config, read_yaml
from rvlf.errors import InputFileError
from rvlf.train import checkpoint as ckpt
from rvlf.train.recipe_configs import STAGE_CONFIGS


def stage_name(directory: Path) -> str:
    """`stage` of a resolved checkpoint folder's config.yaml: pretrain, sft or grpo (else InputFileError)."""
    if not (directory / "config.yaml").is_file():
        raise InputFileError(directory, "checkpoint has no config.yaml")
    stage = read_yaml(directory / "config.yaml").get("stage")
    if stage not in STAGE_CONFIGS:
        raise InputFileError(directory / "config.yaml", f"unknown stage {stage!r} (pretrain, sft or grpo)")
    return stage


def load_stage_config(directory: str | Path):
    """The config (`PretrainConfig`, `SFTConfig` or `GRPOConfig`) of a checkpoint folder of any stage, or
    of an exported model folder, without loading its weights.

    Raises InputFileError when the folder has no config.yaml or names an unknown stage."""
    directory = ckpt.resolve_checkpoint(directory)
    return load_config(STAGE_CONFIGS[stage_name(directory)], directory / "config.yaml")
