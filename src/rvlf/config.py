"""Configuration: dataclasses filled from YAML files and `key=value` overrides.

Every stage's run config is a dataclass (in `rvlf.train.configs`) made of
the sections below plus the model configs of `rvlf.models`. A YAML file sets only what differs
from the defaults; defaults are the paper's values (Tables 9-11, Sec. 4.1 and 6.3).
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rvlf.errors import ConfigError

T = TypeVar("T")

DATASET_LANGS = {"phoenix": "de", "phoenix2014t": "de", "phoenix-2014t": "de", "phoenix14t": "de",
                 "csl-daily": "zh", "csl_daily": "zh", "csldaily": "zh", "csl": "zh", "how2sign": "en", "openasl": "en"}


@dataclass
class DataConfig:
    """Where the data is and how it is cut."""

    dataset: str = "manifest"  # phoenix | csl-daily | how2sign | openasl | labels | manifest
    root: str = ""  # dataset folder or its annotation file (docs/datasets.md)
    video_root: str = ""  # openasl: the clips folder; labels: what imgs_path/video_path are relative to
    features_dir: str = ""  # output of `rvlf extract`; empty: the manifest's `features` paths
    skip_bad_samples: bool = False  # leave out samples whose feature file/text is unusable (else: stop before step 1)
    dino_model: str = "facebook/dinov2-base"  # what the features were extracted with (for `rvlf translate`)
    lang: str = ""  # empty: the dataset's language
    max_frames: int = 300  # Sec. 7.1: sequences are cut to 300 frames
    long_inputs: str = "truncate"  # past max_frames: truncate (Sec. 7.1, keep the first) | subsample (uniform over all)
    max_text_tokens: int = 64
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"
    dev_max_samples: int = 0  # 0 = the whole dev split at each evaluation
    num_workers: int = 0
    preload: bool = True  # keep feature files in memory after the first read

    def language(self) -> str:
        return self.lang or DATASET_LANGS.get(self.dataset, "en")


@dataclass
class TrainConfig:
    """The optimisation shell shared by the three stages."""

    epochs: float = 200
    batch_size: int = 8
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.001
    scheduler: str = "cosine"  # cosine | constant | wsd (constant, then linear decay over decay_fraction)
    decay_fraction: float = 0.2  # wsd only: the share of the steps spent decaying to 0
    warmup_epochs: float = 20  # Sec. 6.3: 10% of 200 epochs
    grad_clip: float = 1.0
    eval_every_epochs: float = 1.0
    eval_every_steps: int = 0  # > 0 overrides eval_every_epochs
    save_every_steps: int = 0  # 0: at each evaluation and epoch end
    num_beams: int = 5
    max_new_tokens: int = 64
    seed: int = 0
    log_every_steps: int = 10
    mixed_precision: str = "no"  # no | fp16 | bf16 (the paper trained in fp16 on V100s)
    grad_accum: int = 1
    grad_checkpointing: bool = False
    # batches of similar length (transformers' `group_by_length`): each epoch's order is a random
    # permutation cut into groups of 50 batches, each group sorted by frame count, so a batch is padded
    # to little more than its own length (a random batch of 32 demo videos: 1.47x the mean length)
    group_by_length: bool = False
    progress: bool = True


@dataclass
class LLMConfig:
    """The causal LM of stages 2 and 3 and its LoRA (Tables 10 and 11)."""

    name_or_path: str = "Qwen/Qwen3-8B"
    # Build a random-initialised Qwen3 of this shape instead of loading weights (tests, demo).
    tiny: dict = field(default_factory=dict)
    # Copy the base LM into every checkpoint (`base_lm/`), as a random tiny LM always is: for a small
    # local LM that no hub has (the demo's pretrained one), so that a run loads without its folder.
    keep_base: bool = False
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.3
    target_modules: list = field(default_factory=lambda: ["q_proj", "v_proj"])
    max_new_tokens: int = 64


# --- generic dataclass <-> dict ---------------------------------------------------------------

def from_dict(cls: type[T], data: dict | None, where: str = "config") -> T:
    """Build dataclass `cls` from a (nested) dict; unknown keys raise ConfigError."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in data.items():
        tp = hints[name]
        default_factory = fields[name].default_factory
        if dataclasses.is_dataclass(tp) and isinstance(value, dict) and default_factory is not dataclasses.MISSING:
            # a partial section keeps this config's own defaults for that section (e.g. GRPO's LoRA r64)
            value = merge(to_dict(default_factory()), value)
        kwargs[name] = _coerce(tp, value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is str and isinstance(value, bool):  # YAML 1.1 reads a bare no/yes/off/on as a boolean
        return "yes" if value else "no"
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        if tp is str and isinstance(value, (int, float)):
            return str(value)
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    if origin in (list, tuple) and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    if tp in (list, tuple) or origin in (list, tuple):
        return list(value)
    return value


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


# --- files and overrides -----------------------------------------------------------------------

def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = data.pop("base", None)  # `base: other.yaml` inherits, relative to this file
    if base:
        parent = read_yaml(path.parent / base)
        data = merge(parent, data)
    return data


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """`section.key=value` strings (values parsed as YAML) applied on a config dict."""
    data = dict(data)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.005")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read `path` (may be None: defaults), apply overrides, build `cls`."""
    data = read_yaml(path) if path else {}
    data.pop("stage", None)
    data = apply_overrides(data, overrides)
    return from_dict(cls, data, where=str(path or "config"))


def stage_of(path: str | Path) -> str | None:
    return read_yaml(path).get("stage")
