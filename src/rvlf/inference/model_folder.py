"""A self-contained model folder (`rvlf export`, `SignTranslator.save_pretrained`) and how it loads.

An exported folder holds what decoding needs and nothing of training (no optimiser, RNG or
trainer state):

    rvlf_model.json      format marker: stage, language, how the LM is stored, DINOv2, provenance
    config.yaml          the run's configuration (`stage: pretrain | sft | grpo`)
    model.safetensors    stage 1: the whole VLP model; stages 2-3: `encoder.*` and `fusion.*`
                         (and with `language_model: reference`, the LoRA adapters `lora.*`/`sft.*`)
    language_model/      stages 2-3, `merged`: the causal LM with every LoRA adapter folded in
                         (`transformers` `save_pretrained`, safetensors)
    llm_tokenizer/       stages 2-3: the LM's tokenizer;  tokenizer/: stage 1's text tokenizer
    dinov2/              a local DINOv2 copy when the run used a local one (else `dinov2` is a hub id)

`language_model: reference` keeps the base LM out of the folder and names it by hub id (the
checkpoint's adapters are rebuilt on top of it at load time, as `load_sft` / `load_grpo` do); an
LM that no hub has (a random tiny one, or one the run copied with `llm.keep_base`) can only be
`merged`. Everything loads through `rvlf.inference.loading.load_stage`, like a training checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from transformers.utils import logging as hf_logging

from rvlf import __version__, atomic
from rvlf.errors import InputFileError, RvlfError
from rvlf.inference.model_paths import EXPORT_FILE, check_destination
from rvlf.jsonfile import read_json
from rvlf.models.fusion import SignFusion
from rvlf.models.skeleton import SkeletonEncoder
from rvlf.models.slt_lm import (
    SignLanguageLM,
    load_causal_lm,
    load_tokenizer,
    merge_lora,
)
from rvlf.train import checkpoint as ckpt
from rvlf.train.recipe_configs import GRPOConfig
from rvlf.train.sign_lm import SignLMStage
from rvlf.train.stage_config import load_stage_config

FORMAT = "rvlf-model"
FORMAT_VERSION = 1
BASES = ("merge", "reference")
# what a training checkpoint folder holds that decoding needs (reference export copies these)
_INFERENCE_FILES = ("model.safetensors", "config.yaml")
_INFERENCE_DIRS = ("llm_tokenizer", "tokenizer")


@contextmanager
def hf_progress_bars_off() -> Iterator[None]:
    """transformers' progress bars ("Loading weights", "Writing model shards") off inside: one bar
    for every model loaded or written is noise in `rvlf translate`, `rvlf export` and the API."""
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def is_exported(directory: str | Path) -> bool:
    return (Path(directory) / EXPORT_FILE).is_file()


def read_info(directory: str | Path) -> dict:
    """`rvlf_model.json` of an exported folder, checked."""
    path = Path(directory) / EXPORT_FILE
    info = read_json(path)  # InputFileError: missing, not JSON, a key twice
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise InputFileError(path, f"not an rvlf model description (format must be {FORMAT!r})")
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise InputFileError(path, f"format version {info['format_version']} is newer than this rvlf reads "
                                   f"({FORMAT_VERSION}); upgrade rvlf")
    return info


def dino_source(directory: str | Path | None, cfg) -> str | None:
    """The DINOv2 model a checkpoint's face/hand features need: its own `dinov2/` copy, else the
    config's `data.dino_model` (hub id or folder); None when the stage uses no DINOv2 features."""
    fusion = getattr(cfg, "fusion", None)
    if fusion is None or not (fusion.use_face or fusion.use_hand):
        return None
    if directory is not None and (Path(directory) / "dinov2").is_dir():
        return str(Path(directory) / "dinov2")
    return cfg.data.dino_model


def portable(value: str) -> str:
    """A path of the machine that wrote a folder -> what an exported folder may keep: an absolute
    (or `~`) path becomes its last component (`/home/me/runs/demo/lm` -> `lm`); a relative path or
    a hub id is kept as it is. Exported folders are uploaded as they are: no local path goes along."""
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return Path(value).expanduser().name or value.strip("/~") or "."
    return value


def portable_config(text: str) -> str:
    """A config YAML with every absolute path value made `portable` (e.g. `llm.name_or_path` of a
    run's own base LM, `data.root`): what the exported folder's `config.yaml` holds. Loading does
    not need those paths (the LM, tokenizer and DINOv2 are in the folder); `rvlf evaluate
    --checkpoint` says which `data.root` to pass when the data is not found."""
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return portable(node) if isinstance(node, str) else node

    data = yaml.safe_load(text)
    clean = walk(data)
    return text if clean == data else yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)


def _base_llm(cfg):
    """The LLMConfig of the base LM under every adapter (SFT: `llm`; GRPO: `sft_llm`)."""
    return cfg.sft_llm if hasattr(cfg, "sft_llm") else cfg.llm


def load_merged(directory: str | Path):
    """A `merged` SFT/GRPO export -> (stage object with `translate`, config): the saved LM, no adapter."""
    directory = Path(directory)
    cfg = load_stage_config(directory)  # the one stage -> config class mapping (checks config.yaml)
    stage = "grpo" if isinstance(cfg, GRPOConfig) else "sft"
    lm = load_causal_lm(str(directory / "language_model"), dtype=_base_llm(cfg).dtype)
    tokenizer = load_tokenizer(str(directory / "llm_tokenizer"))
    max_new = cfg.grpo.max_new_tokens if stage == "grpo" else cfg.llm.max_new_tokens
    model = SignLanguageLM(SkeletonEncoder(cfg.encoder), SignFusion(cfg.fusion, lm.config.hidden_size), lm,
                           tokenizer, max_new_tokens=max_new)
    model.load_checkpoint_state(ckpt.load_weights(directory / ckpt.MODEL_FILE))
    obj = SignLMStage(cfg, model, None)
    obj.name = stage
    return obj, cfg


def save_exported(stage, cfg, out: str | Path, *, source: str | Path | None = None, base: str = "merge",
                  info: dict | None = None, extra=None) -> Path:
    """Write a loaded stage (`load_stage`) as a self-contained folder `out` (atomically).

    `base`: `merge` folds every LoRA adapter into the LM and saves it (safetensors; for stage 2-3
    models this changes the in-memory `stage.model.lm` to the merged LM, which decodes the same);
    `reference` saves the adapters only and names the base LM by its hub id (needs `source`, the
    checkpoint or export folder the stage was loaded from). `extra(tmp_dir)` may add files (model
    card, scores). Raises `RvlfError` for a reference to a base LM that no hub has, `WriteError` (the
    folder and the OS error) when the disk refuses: an earlier export at `out` is then unchanged and
    the temporary folder removed. Temporary folders of killed exports (dead processes) are removed.
    """
    with hf_progress_bars_off(), atomic.reported_write(out, "the model folder",
                                                       "an earlier export there, if any, is unchanged"):
        return _save_exported(stage, cfg, out, source=source, base=base, info=info, extra=extra)


def _save_exported(stage, cfg, out: str | Path, *, source: str | Path | None = None, base: str = "merge",
                   info: dict | None = None, extra=None) -> Path:
    if base not in BASES:
        raise RvlfError(f"--base {base!r}: choose one of {', '.join(BASES)}")
    out = check_destination(out)
    name = stage.name
    src = Path(source) if source is not None else None
    base_id = None
    if name in ("sft", "grpo"):
        llm = _base_llm(cfg)
        if base == "reference":
            if llm.tiny:
                raise RvlfError("the base LM is a random tiny model that no hub has: export it with --base merge")
            if llm.keep_base:
                raise RvlfError(f"the base LM ({llm.name_or_path}) is the run's own copy (llm.keep_base) that no hub "
                                "has: export it with --base merge")
            if Path(llm.name_or_path).expanduser().exists():
                raise RvlfError(f"the base LM {llm.name_or_path} is a local folder: --base reference needs a hub id "
                                "(or export with --base merge)")
            if src is None or not (src / ckpt.MODEL_FILE).is_file():
                raise RvlfError("--base reference copies the checkpoint's adapters: load from a checkpoint folder")
            if is_exported(src) and read_info(src).get("language_model") == "merged":
                raise RvlfError(f"{src}: its adapters are already merged into the LM; export it with --base merge")
            base_id = llm.name_or_path
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.clean_stale_temps(out.parent, out.name)  # what a killed export left (a dead process's only)
    tmp = atomic.make_temp_dir(out)
    umask = os.umask(0)
    os.umask(umask)
    try:
        (tmp / "config.yaml").write_text(portable_config(stage.config_yaml()), encoding="utf-8")
        if name == "pretrain":
            ckpt.save_weights(tmp / ckpt.MODEL_FILE, stage.model.state_dict())
            stage.tokenizer.save(tmp / "tokenizer")
            lm_kind = None
        elif base == "merge":
            model = stage.model
            if hasattr(model.lm, "merge_and_unload"):
                model.lm = merge_lora(model.lm)
            ckpt.save_weights(tmp / ckpt.MODEL_FILE, model.state_dict_for_checkpoint())
            model.lm.save_pretrained(str(tmp / "language_model"))
            model.tokenizer.save_pretrained(str(tmp / "llm_tokenizer"))
            lm_kind = "merged"
        else:
            for f in _INFERENCE_FILES:
                shutil.copy2(src / f, tmp / f)
            for d in _INFERENCE_DIRS:
                if (src / d).is_dir():
                    shutil.copytree(src / d, tmp / d)
            lm_kind = "reference"
        dino = dino_source(src, cfg)
        dino_entry = None
        if dino is not None:
            if Path(dino).expanduser().is_dir():
                shutil.copytree(Path(dino).expanduser(), tmp / "dinov2")
                dino_entry = "dinov2"
            else:
                dino_entry = portable(dino)
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stage": name,
            "language": cfg.data.language(),
            "language_model": lm_kind,
            # a hub id only: a random tiny LM or one copied with the run (`llm.keep_base`) has none
            "base_model": base_id or (None if name == "pretrain" or _base_llm(cfg).tiny or _base_llm(cfg).keep_base
                                      or portable(_base_llm(cfg).name_or_path) != _base_llm(cfg).name_or_path
                                      else _base_llm(cfg).name_or_path),
            "dinov2": dino_entry,
            "rvlf_version": __version__,
            **(info or {}),
        }
        (tmp / EXPORT_FILE).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if extra is not None:
            extra(tmp)
        for path in [tmp, *tmp.rglob("*")]:  # a folder to share: readable as the umask allows, not 0600
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
        atomic.replace_dir(tmp, out)  # an earlier export parked under the temporary name: cleaned next time
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

