"""Configuration: dataclasses filled from YAML files and `key=value` overrides, validated once.

Every stage's run config is a dataclass (in `rvlf.train.recipe_configs`) made of the sections below plus
the model configs of `rvlf.models.configs`. A YAML file sets only what differs from the defaults;
defaults are the paper's values (Tables 9-11, Sec. 4.1 and 6.3).

`load_config` checks every setting when the config is loaded, before any data, model or download
is touched (docs/architecture.md, "Configuration"):

* YAML is read with YAML 1.2 scalars: only `true`/`false` are booleans (`yes`, `no`, `on`, `off`
  stay strings) and `1e-3` is a float. A key repeated at any depth is an error (file, line, key);
  `base: other.yaml` inherits (relative to the file), and a `base:` cycle is an error naming it.
* Overrides are `section.key=value` (value read as YAML); of a key given twice the last one wins.
* Unknown keys are errors, so a typo never silently falls back to a default.
* pydantic v2 validates the dataclasses: strict types (a boolean is not a number, a string is not
  an integer), ranges (`Field(ge=...)`), choices (`Literal`), lists (a single value or
  `a,b` is a list, never its characters). Each fault is reported as `SOURCE: key.path: problem,
  got VALUE`, where SOURCE is `file:line` or `override 'key=value'`, all on one line (ConfigError).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict before Python 3.12

from rvlf.errors import ConfigError

T = TypeVar("T")

DATASET_LANGS = {"phoenix": "de", "phoenix2014t": "de", "phoenix-2014t": "de", "phoenix14t": "de",
                 "csl-daily": "zh", "csl_daily": "zh", "csldaily": "zh", "csl": "zh", "how2sign": "en", "openasl": "en"}
# every name `rvlf.data.readers.dataset_kind` accepts (kinds and aliases; a test keeps them in step)
DATASET_KINDS = ("phoenix2014t", "csl-daily", "how2sign", "openasl", "labels", "manifest", "phoenix", "phoenix-2014t",
                 "phoenix14t", "csl_daily", "csldaily", "csl", "jsonl", "gfslt", "gfslt-vlp", "uni-sign", "unisign")
# `llm.tiny` keys (`rvlf.runs.memory_plan.lm_config` / `build_tiny_qwen3`)
TINY_KEYS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "seed", "init_std")


# --- field types: strict scalars with their ranges (pydantic v2 constraints) --------------------

def _as_list(value: Any) -> Any:
    """A single value is a one-element list; `"a,b"` (an override) is `[a, b]`, each part read as YAML."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        return [_yaml_value(part.strip()) for part in value.split(",") if part.strip()]
    if value is not None and not isinstance(value, (list, dict)):
        return [value]
    return value


def _dataset_kind(value: str) -> str:
    """A known kind or alias, lower-cased (`PHOENIX` -> `phoenix`, so that `DataConfig.language` knows it)."""
    key = value.strip().lower()
    if key not in DATASET_KINDS:
        raise ValueError(f"must be one of {', '.join(DATASET_KINDS[:6])} (or an alias: "
                         f"{', '.join(DATASET_KINDS[6:])})")
    return key


Int = Annotated[int, Strict()]
PosInt = Annotated[int, Strict(), Field(ge=1)]  # sizes, counts, steps, beams: 0 is meaningless
NonNegInt = Annotated[int, Strict(), Field(ge=0)]  # where 0 means "off" / "all" (said at the field)
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # an int is accepted (200 -> 200.0), a bool is not
PosFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]  # rates, epochs, temperatures
NonNegFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Dropout = Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)]
Str = Annotated[str, Strict()]
Name = Annotated[str, Strict(), Field(min_length=1)]
Bool = Annotated[bool, Strict()]
StrList = Annotated[list[Name], BeforeValidator(_as_list), Field(min_length=1)]
PosIntList = Annotated[list[PosInt], BeforeValidator(_as_list), Field(min_length=1)]


class TinyShape(TypedDict, total=False):
    """`llm.tiny`: the shape of a random-initialised Qwen3 (`rvlf.runs.memory_plan.lm_config`); keys TINY_KEYS."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    hidden_size: PosInt
    num_layers: PosInt
    num_heads: PosInt
    num_kv_heads: PosInt
    intermediate_size: PosInt
    seed: NonNegInt
    init_std: PosFloat


class Section:
    """Base of every config dataclass: `freeze(cfg)` makes assignment to it raise.

    A run's config is resolved once (files, overrides, the previous stage, resume, widths read from the
    data: pure functions returning a new config with `dataclasses.replace`) and then frozen, so that
    `config.yaml` is exactly the config that built the model and a later write fails loudly."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise dataclasses.FrozenInstanceError(
                f"cannot assign {type(self).__name__}.{name}: the config is resolved and frozen "
                "(make a new one with dataclasses.replace before construction)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen"):
            raise dataclasses.FrozenInstanceError(f"cannot delete {type(self).__name__}.{name}: the config is frozen")
        object.__delattr__(self, name)


def freeze(cfg: T) -> T:
    """`cfg` and every config section in it, frozen in place (returned for chaining)."""
    if isinstance(cfg, Section):
        for f in dataclasses.fields(cfg):
            freeze(getattr(cfg, f.name))
        object.__setattr__(cfg, "_frozen", True)
    return cfg


def is_frozen(cfg: Any) -> bool:
    return bool(getattr(cfg, "__dict__", {}).get("_frozen"))


@dataclass
class DataConfig(Section):
    """Where the data is and how it is cut."""

    # phoenix | csl-daily | how2sign | openasl | labels | manifest (docs/datasets.md; aliases accepted)
    dataset: Annotated[Str, AfterValidator(_dataset_kind)] = "manifest"
    root: Str = ""  # dataset folder or its annotation file (docs/datasets.md)
    video_root: Str = ""  # openasl: the clips folder; labels: what imgs_path/video_path are relative to
    features_dir: Str = ""  # output of `rvlf extract`; empty: the manifest's `features` paths
    skip_bad_samples: Bool = False  # leave out samples whose feature file/text is unusable (else: stop before step 1)
    dino_model: Str = "facebook/dinov2-base"  # what the features were extracted with (for `rvlf translate`)
    lang: Str = ""  # empty: the dataset's language
    max_frames: PosInt = 300  # Sec. 7.1: sequences are cut to 300 frames
    # past max_frames: truncate (Sec. 7.1, keep the first) | subsample (uniform over all)
    long_inputs: Literal["truncate", "subsample"] = "truncate"
    max_text_tokens: PosInt = 64
    train_split: Name = "train"
    dev_split: Name = "dev"
    test_split: Name = "test"
    dev_max_samples: NonNegInt = 0  # 0 = the whole dev split at each evaluation
    num_workers: NonNegInt = 0  # 0: load in the main process
    preload: Bool = True  # keep feature files in memory after the first read

    def language(self) -> str:
        return self.lang or DATASET_LANGS.get(self.dataset, "en")


@dataclass
class TrainConfig(Section):
    """The optimisation shell shared by the three stages."""

    epochs: PosFloat = 200
    batch_size: PosInt = 8  # per process
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: PosFloat = 0.01
    momentum: Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)] = 0.9  # SGD only, in [0, 1)
    weight_decay: NonNegFloat = 0.001
    # cosine | constant | wsd (constant, then linear decay over decay_fraction)
    scheduler: Literal["cosine", "constant", "wsd"] = "cosine"
    decay_fraction: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] = 0.2  # wsd: share decaying, (0, 1]
    warmup_epochs: NonNegFloat = 20  # Sec. 6.3: 10% of 200 epochs
    grad_clip: NonNegFloat = 1.0  # max gradient norm; 0: no clipping
    eval_every_epochs: PosFloat = 1.0
    eval_every_steps: NonNegInt = 0  # > 0 overrides eval_every_epochs; 0: use eval_every_epochs
    save_every_steps: NonNegInt = 0  # 0: at each evaluation and epoch end
    num_beams: PosInt = 5
    max_new_tokens: PosInt = 64
    seed: NonNegInt = 0
    log_every_steps: PosInt = 10
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # the paper trained in fp16 on V100s
    grad_accum: PosInt = 1
    grad_checkpointing: Bool = False
    # batches of similar length (transformers' `group_by_length`): each epoch's order is a random
    # permutation cut into groups of 50 batches, each group sorted by frame count, so a batch is padded
    # to little more than its own length (a random batch of 32 demo videos: 1.47x the mean length)
    group_by_length: Bool = False
    progress: Bool = True


@dataclass
class LLMConfig(Section):
    """The causal LM of stages 2 and 3 and its LoRA (Tables 10 and 11)."""

    name_or_path: Str = "Qwen/Qwen3-8B"
    # Build a random-initialised Qwen3 of this shape instead of loading weights (tests, demo); keys TINY_KEYS.
    tiny: TinyShape = field(default_factory=dict)  # type: ignore[assignment]
    # Copy the base LM into every checkpoint (`base_lm/`), as a random tiny LM always is: for a small
    # local LM that no hub has (the demo's pretrained one), so that a run loads without its folder.
    keep_base: Bool = False
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    lora_r: PosInt = 16
    lora_alpha: PosInt = 32
    lora_dropout: Dropout = 0.3
    # LoRA's target module names; `q_proj` alone or `q_proj,v_proj` (an override) is a list
    target_modules: StrList = field(default_factory=lambda: ["q_proj", "v_proj"])
    max_new_tokens: PosInt = 64


# --- generic dataclass <-> dict ---------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def _filled(default: Any, data: dict, path: tuple, origins: dict, where: str) -> dict:
    """`data` over the field values of the dataclass instance `default`: a section given in part keeps
    the enclosing config's own defaults for the rest (e.g. GRPO's LoRA r64). Unknown keys raise."""
    names = [f.name for f in dataclasses.fields(default)]
    unknown = [k for k in data if k not in names]
    if unknown:
        dotted = [".".join(map(str, (*path, k))) for k in unknown]
        raise ConfigError(f"{_source(origins, (*path, unknown[0]), where)}: unknown key(s) {', '.join(dotted)} "
                          f"(known{' in ' + '.'.join(path) if path else ''}: {', '.join(sorted(names))})")
    out = {}
    for name in names:
        if name not in data:
            continue
        value, current = data[name], getattr(default, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            sub = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
            sub.update(_filled(current, value, (*path, name), origins, where))
            value = sub
        out[name] = value
    return out


def from_dict(cls: type[T], data: dict | None, where: str = "config", origins: dict | None = None,
              path: tuple[str, ...] = ()) -> T:
    """Build and validate dataclass `cls` from a (nested) dict.

    `where` names the source for messages (a file, `config`, a checkpoint's `config.yaml`);
    `origins` maps key paths (tuples) to a finer source (`file:line`, `override 'k=v'`); `path` is
    where `cls` sits in the whole config (`("data",)` for a `DataConfig`), for the key paths named.
    Raises ConfigError (one line) on unknown keys and on every type, range or choice fault."""
    origins = origins or {}
    data = _filled(cls(), dict(data or {}), path, origins, where)
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as err:
        raise ConfigError(_validation_message(err, origins, where, path)) from None
    except ConfigError as err:  # a dataclass's own __post_init__ check (e.g. GRPOParams): add the source
        text = str(err)
        key = re.match(r"[A-Za-z_]+(?:\.[A-Za-z_]+)+", text)
        raise ConfigError(f"{_source(origins, tuple(key.group(0).split('.')) if key else (), where)}: {text}") from None


def _source(origins: dict, path: tuple, where: str) -> str:
    for n in range(len(path), 0, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return where


_PROBLEMS = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "dataclass_type": "expected a section (a mapping of keys)",
    "finite_number": "expected a finite number",
    "too_short": "must not be empty",
    "extra_forbidden": "unknown key",
}


def _problem(e: dict) -> str:
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if kind in _PROBLEMS:
        text = _PROBLEMS[kind]
        if kind == "extra_forbidden" and "tiny" in e["loc"]:
            text += f" (known: {', '.join(TINY_KEYS)})"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op, key = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("<=", "le"),
                   "less_than": ("<", "lt")}[kind]
        text = f"must be {op} {ctx[key]:g}"
    elif kind == "literal_error":
        text = f"must be one of {ctx['expected'].replace(' or ', ', ')}"
    elif kind == "value_error":
        text = str(ctx.get("error", e["msg"]))
        if isinstance(e["input"], dict):  # a whole section's own check (__post_init__): the text says it
            return text
    else:
        text = re.sub(r"^Input should be", "must be", e["msg"])
    return f"{text}, got {e['input']!r}"


def _validation_message(err: ValidationError, origins: dict, where: str, prefix: tuple = ()) -> str:
    lines = []
    for e in err.errors():
        path = prefix + tuple(p for p in e["loc"] if isinstance(p, int) or re.fullmatch(r"[A-Za-z_]\w*", str(p)))
        keys = tuple(p for p in path if isinstance(p, str))
        dotted = ".".join(keys) + "".join(f"[{p}]" for p in path[len(keys):] if isinstance(p, int))
        source = _source(origins, keys, where)
        if isinstance(e["input"], dict):  # a section's own check: name the overrides inside it, if any
            inside = sorted({v for k, v in origins.items() if k[:len(keys)] == keys and v.startswith("override ")})
            source = ", ".join(inside) or source
        lines.append(f"{source}: {dotted}: {_problem(e)}")
    if len(lines) > 1:
        return f"{len(lines)} config errors: " + "; ".join(lines)
    return lines[0]


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    """`cfg` as YAML that reads back the same with ConfigLoader and with plain YAML 1.1 readers."""
    return yaml.dump(to_dict(cfg), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


# --- YAML: 1.2 scalars, duplicate keys refused, where each key was set --------------------------

_BOOL, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with YAML 1.2 core scalars: `true`/`false` only are booleans (YAML 1.1's
    `yes`/`no`/`on`/`off` stay strings, so `mixed_precision: no` is "no" and `max_frames: yes` is an
    error, not True); `1e-3` (no dot) is a float."""


ConfigLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _FLOAT)]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
ConfigLoader.add_implicit_resolver(_FLOAT, re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """Quotes a string that YAML 1.1 (`'no'`) or ConfigLoader's YAML 1.2 floats (`'1e3'`) would read otherwise."""


_Dumper.add_implicit_resolver(_FLOAT, ConfigLoader.yaml_implicit_resolvers["1"][-1][1], list("-+0123456789."))


class _Duplicate(Exception):
    def __init__(self, path: tuple, line: int, first: int):
        super().__init__(path, line, first)
        self.path, self.line, self.first = path, line, first


def _key_lines(node: yaml.Node, path: tuple, origins: dict, source: str) -> None:
    """Record `source:line` of every key path under `node`; raise _Duplicate on a repeated key."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` (explicit keys win, as YAML says)
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Duplicate((*path, key), line, seen[key])
            seen[key] = line
            origins[(*path, key)] = f"{source}:{line}"
            _key_lines(value_node, (*path, key), origins, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _key_lines(item, path, origins, source)


def _parse(text: str, source: str, origins: dict, prefix: tuple = ()) -> Any:
    """YAML `text` -> Python (ConfigLoader); key lines go to `origins` under `prefix`."""
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _key_lines(node, prefix, origins, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_value(raw: str) -> Any:
    """One override value or list item as YAML (ConfigLoader); text that is not valid YAML stays text."""
    if raw == "":
        return ""
    try:
        return _parse(raw, "", {})
    except (yaml.YAMLError, _Duplicate):
        return raw


def _read(path: Path, chain: tuple[Path, ...], shown: tuple[str, ...], origins: dict) -> dict:
    name = os.path.normpath(path)
    key = path.resolve()
    if key in chain:
        raise ConfigError(f"base cycle: {' -> '.join((*shown, name))}")
    if not path.is_file():
        problem = "is a folder, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(f"{name}: {problem}" + (f" (the base of {shown[-1]})" if shown else ""))
    own: dict = {}
    try:
        data = _parse(path.read_text(encoding="utf-8"), name, own)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except _Duplicate as dup:
        raise ConfigError(f"{name}:{dup.line}: duplicate key {'.'.join(map(str, dup.path))} "
                          f"(first at line {dup.first}); each key may appear once") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or str(err).splitlines()[0]})") from None
    if data is None:  # nothing but comments or blank lines (or `null`): a config that says nothing is a mistake
        raise ConfigError(f"{name}: empty config file" + (f" (the base of {shown[-1]})" if shown else ""))
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    base = data.pop("base", None)  # `base: other.yaml` inherits, relative to this file
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise ConfigError(f"{own.get(('base',), name)}: base: expected a file name, got {base!r}")
    if base:
        parent = _read(path.parent / base, (*chain, key), (*shown, name), origins)
        data = merge(parent, data)
    origins.update({k: v for k, v in own.items() if k != ("base",)})
    return data


def read_yaml(path: str | Path, origins: dict | None = None) -> dict:
    """The mapping of a config file with its `base:` chain merged in (the file's own keys win).

    `origins`, if given, is filled with `{key path tuple: "file:line"}`. Raises ConfigError: file
    not found, empty (only comments or blank lines: `FILE: empty config file`), not valid YAML, a
    duplicate key (file, line, key), a `base:` cycle (the chain)."""
    return _read(Path(path), (), (), {} if origins is None else origins)


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...], origins: dict | None = None) -> dict:
    """`section.key=value` strings (values read as YAML) applied on a config dict.

    A key given again replaces the earlier value (the last one wins, as for a repeated option; scripts
    and tests add a specific value after a shared list). `origins`, if given, records `override
    'key=value'` for each key set. Raises ConfigError for an item without `=`, an empty key part, or a
    key below a value that is no section."""
    data = dict(data)
    origins = {} if origins is None else origins
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.005")
        key, raw = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: expected key=value with a dotted key, e.g. train.lr=0.005")
        source = f"override {item!r}"
        value_origins: dict = {}
        try:
            # text with ` #` is a name or path (`videos #1`), not YAML with a comment that would cut it short
            value = raw if raw == "" or re.search(r"(^|\s)#", raw) else _parse(raw, source, value_origins, tuple(parts))
        except _Duplicate as dup:
            raise ConfigError(f"{source}: duplicate key {'.'.join(map(str, dup.path))}") from None
        except yaml.YAMLError:
            value = raw
        node = data
        for n, p in enumerate(parts[:-1]):
            child = node.get(p)
            if child is not None and not isinstance(child, dict):
                raise ConfigError(f"{source}: {'.'.join(parts[:n + 1])} is {child!r}, not a section")
            node[p] = dict(child or {})
            node = node[p]
        node[parts[-1]] = value
        for k in [k for k in origins if k[:len(parts)] == tuple(parts)]:
            del origins[k]  # the override replaces what the file said below this key
        origins[tuple(parts)] = source
        origins.update({k: source for k in value_origins})
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read `path` (may be None: defaults), apply overrides, build and validate `cls`.

    Everything is checked here, before any data or model is read: ConfigError (one line naming the
    key path and the file:line or the override) for a bad file, key, type, range or choice."""
    origins: dict = {}
    data = read_yaml(path, origins) if path else {}
    data.pop("stage", None)
    data = apply_overrides(data, overrides, origins)
    return from_dict(cls, data, where=os.path.normpath(path) if path else "config", origins=origins)


def override_section(section: T, name: str, overrides: list[str] | tuple[str, ...]) -> T:
    """The dataclass `section` (e.g. a checkpoint's `data`) with `name.key=value` overrides applied,
    validated as `load_config` does; ConfigError names the override. Other keys than `name.*` are errors."""
    for item in overrides or ():
        if not item.startswith(f"{name}."):
            raise ConfigError(f"override {item!r}: only {name}.* overrides apply here")
    origins: dict = {}
    data = apply_overrides({name: to_dict(section)}, overrides, origins)
    return from_dict(type(section), data[name], where="overrides", origins=origins, path=(name,))
