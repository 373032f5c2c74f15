"""One validated configuration (issue 28, report cases C10-C12): strict types, ranges, choices and
lists checked by `load_config`; duplicate YAML keys and `base:` cycles refused; every error one line
naming the key path and the file:line or the override; the packaged configs load as written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from rvlf.cli import main
from rvlf.config import DataConfig, load_config, override_section, read_yaml, to_dict, to_yaml
from rvlf.errors import ConfigError
from rvlf.train.recipe_configs import GRPOConfig, PretrainConfig, SFTConfig

REPO = Path(__file__).resolve().parents[1]
STAGES = {"pretrain": PretrainConfig, "sft": SFTConfig, "grpo": GRPOConfig}
PACKAGED = sorted([*REPO.glob("configs/paper/*/*.yaml"), *REPO.glob("configs/demo/*.yaml"),
                   *REPO.glob("src/rvlf/runs/demo_configs/*.yaml")])
MINI = """stage: sft
data:
  dataset: manifest
  root: mini/manifest.jsonl
  max_frames: 64
llm:
  tiny: {hidden_size: 64, num_layers: 2}
  target_modules: [q_proj, v_proj]
train:
  epochs: 1
  batch_size: 2
  lr: 0.003
"""


@pytest.fixture
def mini(tmp_path) -> Path:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "sft_mini.yaml"
    path.write_text(MINI)
    return path


def _error(cls, path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cls, path, list(overrides))
    text = str(info.value)
    assert "\n" not in text
    return text


# --- C10: types and ranges -----------------------------------------------------------------------

@pytest.mark.parametrize("override, expected", [
    # the report's cases
    ("data.max_frames=yes", "data.max_frames: expected an integer, got 'yes'"),
    ("train.batch_size=true", "train.batch_size: expected an integer, got True"),
    ("train.num_beams=false", "train.num_beams: expected an integer, got False"),
    ("train.batch_size=0", "train.batch_size: must be >= 1, got 0"),
    ("train.grad_accum=0", "train.grad_accum: must be >= 1, got 0"),
    ("data.max_frames=-5", "data.max_frames: must be >= 1, got -5"),
    # variants: other keys, types and sections
    ("train.epochs=false", "train.epochs: expected a number, got False"),
    ("train.lr=0", "train.lr: must be > 0, got 0"),
    ("train.lr=.inf", "train.lr: expected a finite number, got inf"),
    ("llm.lora_r=on", "llm.lora_r: expected an integer, got 'on'"),
    ("llm.lora_dropout=1.5", "llm.lora_dropout: must be < 1, got 1.5"),
    ("train.max_new_tokens=2.5", "train.max_new_tokens: expected an integer, got 2.5"),
    ("data.preload=yes", "data.preload: expected true or false, got 'yes'"),
    ("data.root=5", "data.root: expected a string, got 5"),
    ("encoder.temporal_kernel=4", "encoder.temporal_kernel: must be odd"),
    ("fusion.projector_hidden=0", "fusion.projector_hidden: must be >= 1, got 0"),
    ("train.optimizer=adam", "train.optimizer: must be one of 'sgd', 'adamw', got 'adam'"),
    ("train.scheduler=linear", "train.scheduler: must be one of 'cosine', 'constant', 'wsd', got 'linear'"),
    ("train.mixed_precision=fp8", "train.mixed_precision: must be one of 'no', 'fp16', 'bf16', got 'fp8'"),
    ("llm.dtype=fp16", "llm.dtype: must be one of 'auto', 'float32', 'float16', 'bfloat16', got 'fp16'"),
    ("data.long_inputs=random", "data.long_inputs: must be one of 'truncate', 'subsample', got 'random'"),
    ("data.dataset=phenix", "data.dataset: must be one of phoenix2014t, csl-daily"),
    ("llm.tiny.layers=2", "llm.tiny.layers: unknown key (known: hidden_size, num_layers"),
    ("train=5", "train: expected a section (a mapping of keys), got 5"),
])
def test_bad_values_name_the_override_and_key(mini, override, expected):
    assert _error(SFTConfig, mini, [override]).startswith(f"override {override!r}: {expected}")


def test_zero_keeps_its_meaning_where_it_has_one(mini):
    cfg = load_config(SFTConfig, mini, ["data.dev_max_samples=0", "train.eval_every_steps=0", "train.grad_clip=0",
                                        "train.save_every_steps=0", "data.num_workers=0", "train.warmup_epochs=0"])
    assert (cfg.data.dev_max_samples, cfg.train.eval_every_steps, cfg.train.grad_clip) == (0, 0, 0.0)


def test_bad_value_in_a_file_names_file_line_and_key(mini, tmp_path):
    mini.write_text(MINI.replace("batch_size: 2", "batch_size: yes"))
    assert _error(SFTConfig, mini) == f"{mini}:11: train.batch_size: expected an integer, got 'yes'"
    # a variant in another section and stage, inherited through `base:` (the line of the file that set it)
    (tmp_path / "run.yaml").write_text("base: cfg/sft_mini.yaml\nllm:\n  lora_r: 8\n")
    mini.write_text(MINI.replace("max_frames: 64", "max_frames: true"))
    assert _error(SFTConfig, tmp_path / "run.yaml") == f"{mini}:5: data.max_frames: expected an integer, got True"
    grpo = tmp_path / "grpo.yaml"
    grpo.write_text("grpo:\n  num_generations: 8\n  reward_lambda: 2\n")
    assert _error(GRPOConfig, grpo).startswith(f"{grpo}:3: grpo.reward_lambda must be in [0, 1]")


def test_several_faults_are_one_line(mini):
    text = _error(SFTConfig, mini, ["train.batch_size=0", "train.lr=-1"])
    assert text == ("2 config errors: override 'train.batch_size=0': train.batch_size: must be >= 1, got 0; "
                    "override 'train.lr=-1': train.lr: must be > 0, got -1")


def test_dataset_kind_is_checked_and_lower_cased(mini):
    cfg = load_config(SFTConfig, mini, ["data.dataset=PHOENIX"])
    assert cfg.data.dataset == "phoenix" and cfg.data.language() == "de"


def test_yaml_1_2_scalars(mini):
    cfg = load_config(SFTConfig, mini, ["train.lr=1e-3", "train.mixed_precision=no", "data.lang=no",
                                        "train.progress=false"])
    assert cfg.train.lr == 0.001 and cfg.train.mixed_precision == "no" and cfg.data.lang == "no"
    assert cfg.train.progress is False
    # a path with ` #` is kept whole (YAML would read the rest as a comment), also an unusual folder name
    cfg = load_config(SFTConfig, mini, ["data.root=/data/Gebärde 手语 #1/manifest.jsonl", "data.features_dir=#feats"])
    assert cfg.data.root == "/data/Gebärde 手语 #1/manifest.jsonl" and cfg.data.features_dir == "#feats"


# --- C11: YAML duplicate keys and base cycles -----------------------------------------------------

def test_duplicate_section_and_key_name_file_line_and_key(mini, tmp_path):
    dup = tmp_path / "c10" / "dup.yaml"
    dup.parent.mkdir()
    dup.write_text("base: ../cfg/sft_mini.yaml\ntrain: {lr: 0.01, batch_size: 4}\nllm: {lora_r: 8}\ntrain: {epochs: 2}\n")
    assert _error(SFTConfig, dup) == f"{dup}:4: duplicate key train (first at line 2); each key may appear once"
    dupkey = tmp_path / "c10" / "dupkey.yaml"
    dupkey.write_text("train:\n  lr: 0.01\n  lr: 0.5\n")
    assert _error(SFTConfig, dupkey) == f"{dupkey}:3: duplicate key train.lr (first at line 2); each key may appear once"
    # variants: deeper (llm.tiny), in a base file, and in an override's value
    mini.write_text(MINI.replace("num_layers: 2}", "num_layers: 2, hidden_size: 32}"))
    dupkey.write_text("base: ../cfg/sft_mini.yaml\n")
    assert _error(SFTConfig, dupkey) == f"{mini}:7: duplicate key llm.tiny.hidden_size (first at line 7); " \
                                     "each key may appear once"
    assert "duplicate key llm.tiny.num_layers" in _error(SFTConfig, None, ["llm.tiny={num_layers: 2, num_layers: 3}"])


def test_an_override_given_again_wins_and_is_the_one_named(mini):
    # the command line's rule (as for a repeated option): a shared list, then a specific value
    assert load_config(SFTConfig, mini, ["train.batch_size=4", "train.batch_size=2"]).train.batch_size == 2
    assert _error(SFTConfig, mini, ["train.batch_size=4", "train.batch_size=0"]) == \
        "override 'train.batch_size=0': train.batch_size: must be >= 1, got 0"


def test_base_cycles_of_any_length_are_one_error(tmp_path):
    d = tmp_path / "c10"
    d.mkdir()
    (d / "self.yaml").write_text("base: self.yaml\n")
    assert _error(SFTConfig, d / "self.yaml") == f"base cycle: {d / 'self.yaml'} -> {d / 'self.yaml'}"
    (d / "a.yaml").write_text("base: b.yaml\n")
    (d / "b.yaml").write_text("base: ./a.yaml\n")
    assert _error(SFTConfig, d / "a.yaml") == f"base cycle: {d / 'a.yaml'} -> {d / 'b.yaml'} -> {d / 'a.yaml'}"
    # a longer cycle through another folder, entered from outside it
    (d / "sub").mkdir()
    (d / "start.yaml").write_text("base: sub/x.yaml\n")
    (d / "sub" / "x.yaml").write_text("base: ../y.yaml\n")
    (d / "y.yaml").write_text("base: sub/x.yaml\n")
    assert _error(SFTConfig, d / "start.yaml") == \
        f"base cycle: {d / 'start.yaml'} -> {d / 'sub/x.yaml'} -> {d / 'y.yaml'} -> {d / 'sub/x.yaml'}"
    (d / "tab.yaml").write_text("base: a.yaml\ntrain:\n\tlr: 0.1\n")
    assert _error(SFTConfig, d / "tab.yaml") == \
        f"{d / 'tab.yaml'}:3: not valid YAML (found character '\\t' that cannot start any token)"
    (d / "list.yaml").write_text("base: [a.yaml]\n")
    assert _error(SFTConfig, d / "list.yaml") == f"{d / 'list.yaml'}:1: base: expected a file name, got ['a.yaml']"


# --- C12: lists ---------------------------------------------------------------------------------------

def test_a_single_value_is_a_one_element_list(mini, tmp_path):
    assert load_config(SFTConfig, mini, ["llm.target_modules=q_proj"]).llm.target_modules == ["q_proj"]
    assert load_config(SFTConfig, mini, ["llm.target_modules=q_proj,v_proj"]).llm.target_modules == ["q_proj", "v_proj"]
    assert load_config(SFTConfig, mini, ["llm.target_modules=[k_proj, o_proj]"]).llm.target_modules == ["k_proj", "o_proj"]
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("llm:\n  target_modules: q_proj\n")
    assert load_config(GRPOConfig, scalar).llm.target_modules == ["q_proj"]
    # a variant: a list of integers (another type, another section)
    assert load_config(PretrainConfig, None, ["model.encoder.gcn_channels=32"]).model.encoder.gcn_channels == [32]
    assert load_config(SFTConfig, None, ["encoder.gcn_channels=64,128"]).encoder.gcn_channels == [64, 128]
    assert _error(SFTConfig, None, ["encoder.gcn_channels=64,x"]) == \
        "override 'encoder.gcn_channels=64,x': encoder.gcn_channels[1]: expected an integer, got 'x'"
    assert _error(SFTConfig, mini, ["llm.target_modules="]) == \
        "override 'llm.target_modules=': llm.target_modules: must not be empty, got ''"


# --- the CLI: exit 2, one line, before any data or model is read --------------------------------------

@pytest.mark.parametrize("command, override, expected", [
    ("sft", "data.max_frames=yes", "data.max_frames: expected an integer, got 'yes'"),
    ("pretrain", "train.batch_size=0", "train.batch_size: must be >= 1, got 0"),
    ("grpo", "llm.target_modules=", "llm.target_modules: must not be empty"),
])
def test_cli_fails_before_reading_data(mini, tmp_path, capsys, command, override, expected):
    # data.root does not exist: a config fault must be reported before the data is looked at
    cfg = REPO / "configs" / "demo" / f"{command}.yaml"
    rc = main([command, "--config", str(cfg), "--out", str(tmp_path / "out"), "data.root=/nonexistent", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"rvlf {command}: error: override {override!r}: {expected}"), err
    assert not (tmp_path / "out").exists()


def test_plan_memory_and_evaluate_refuse_bad_configs(tmp_path, capsys):
    d = tmp_path / "c10"
    d.mkdir()
    (d / "a.yaml").write_text("stage: sft\nbase: b.yaml\n")
    (d / "b.yaml").write_text("base: a.yaml\n")
    assert main(["plan-memory", "--config", str(d / "a.yaml"), "--gpu-gib", "32"]) == 2
    assert capsys.readouterr().err.strip() == \
        f"rvlf plan-memory: error: base cycle: {d / 'a.yaml'} -> {d / 'b.yaml'} -> {d / 'a.yaml'}"
    # evaluate: checked before the checkpoint (here: none) is looked up
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none"), "data.max_frames=0"]) == 2
    assert capsys.readouterr().err.strip() == \
        "rvlf evaluate: error: override 'data.max_frames=0': data.max_frames: must be >= 1, got 0"


def test_override_section_keeps_the_section_and_names_the_override():
    data = override_section(DataConfig(max_frames=100, dataset="phoenix"), "data", ["data.dev_max_samples=4"])
    assert (data.max_frames, data.dataset, data.dev_max_samples) == (100, "phoenix", 4)
    with pytest.raises(ConfigError, match=r"^override 'train.lr=1': only data\.\* overrides apply here$"):
        override_section(DataConfig(), "data", ["train.lr=1"])


# --- the packaged configs load, and hold what their files say ----------------------------------------

def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: str(p.relative_to(REPO)))
def test_packaged_configs_load_as_written(path, tmp_path):
    raw = read_yaml(path)
    stage = raw.pop("stage", None) or next(k for k in STAGES if k in path.name)
    cfg = load_config(STAGES[stage], path)
    values = to_dict(cfg)
    for keys, value in _leaves(raw):
        got = values
        for k in keys:
            got = got[k]
        if not (isinstance(value, dict) and not value):  # `tiny: {}`
            assert got == value and type(got) is type(value) or isinstance(got, float) and got == value, (keys, got, value)
    (tmp_path / "c.yaml").write_text(to_yaml(cfg))
    assert load_config(STAGES[stage], tmp_path / "c.yaml") == cfg  # a checkpoint's config.yaml reads back the same
    # plain YAML 1.1 reads the same values: no file relies on the stricter scalars
    with open(path, encoding="utf-8") as f:
        plain = yaml.safe_load(f)
    plain.pop("stage", None)
    plain.pop("base", None)
    for keys, value in _leaves(plain):
        got = values
        for k in keys:
            got = got[k]
        assert got == value, keys


def test_choices_match_the_code_that_uses_them():
    """The config's choice lists are the ones the readers, rewards, fusion and LM loader accept."""
    import typing

    from rvlf.config import DATASET_KINDS, LLMConfig, TrainConfig
    from rvlf.data.dataset import LONG_INPUTS
    from rvlf.data.readers import _KIND_ALIASES, READERS
    from rvlf.rl.rewards import KINDS
    from rvlf.train.recipe_configs import REWARD_KINDS
    from rvlf.train.sign_lm import LM_DTYPES

    def choices(cls, name):
        return typing.get_args(typing.get_type_hints(cls)[name])

    assert set(DATASET_KINDS) == set(READERS) | set(_KIND_ALIASES)
    assert REWARD_KINDS == KINDS
    assert choices(DataConfig, "long_inputs") == LONG_INPUTS
    assert choices(LLMConfig, "dtype") == LM_DTYPES
    assert choices(TrainConfig, "scheduler") == ("cosine", "constant", "wsd")
    assert {f.name for f in dataclasses.fields(SFTConfig)} >= {"data", "encoder", "fusion", "llm", "train"}


def test_section_checks_across_fields_name_the_override():
    assert _error(PretrainConfig, None, ["model.encoder.d_model=256"]) == (
        "override 'model.encoder.d_model=256': model: encoder.d_model (256) must equal d_model (512): "
        "the decoder cross-attends the skeleton features (Eq. 10)")
    assert _error(SFTConfig, None, ["encoder.num_heads=7"]) == \
        "override 'encoder.num_heads=7': encoder: d_model (512) must be a multiple of num_heads (7)"


def test_a_saved_config_reads_back_the_same_with_both_yaml_readers(tmp_path):
    """A checkpoint's config.yaml: strings that YAML 1.1 (`no`) or 1.2 (`1e3`) would read as another type are quoted."""
    cfg = load_config(SFTConfig, None, ["data.train_split='1e3'", "data.lang=no", "train.mixed_precision=no",
                                        "train.lr=1e-4", "llm.target_modules=q_proj"])
    (tmp_path / "config.yaml").write_text(to_yaml(cfg))
    assert load_config(SFTConfig, tmp_path / "config.yaml") == cfg
    plain = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert (plain["data"]["train_split"], plain["data"]["lang"], plain["train"]["lr"]) == ("1e3", "no", 1e-4)


@pytest.mark.parametrize("text", ["", "\n\n", "# train:\n#   lr: 0.01\n", "---\n# nothing yet\n"])
def test_an_empty_config_file_says_so(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    for cls in (PretrainConfig, SFTConfig, GRPOConfig):
        with pytest.raises(ConfigError, match=rf"^{path}: empty config file$"):
            load_config(cls, path)
    (tmp_path / "child.yaml").write_text("base: empty.yaml\ntrain:\n  lr: 0.01\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: empty config file \(the base of {tmp_path / 'child.yaml'}\)$"):
        read_yaml(tmp_path / "child.yaml")


@pytest.mark.parametrize("command", ["pretrain", "sft", "grpo"])
def test_training_commands_refuse_an_empty_config_file_before_any_work(tmp_path, capsys, command):
    path = tmp_path / "blank.yaml"
    path.write_text("# to be filled in\n", encoding="utf-8")
    assert main([command, "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"rvlf {command}: error: {path}: empty config file"
    assert not (tmp_path / "out").exists()
