"""`rvlf export`: a self-contained model folder with a model card that translates like its run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, cli
from rvlf import SignTranslator
from rvlf.text.files import one_line


def assert_same_nbest(a, b) -> None:
    """Same texts in the same order; scores equal up to float rounding (a merged LoRA adds ~1e-7)."""
    assert [h.text for h in a] == [h.text for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


@pytest.fixture(scope="module")
def exported(tiny_grpo_run, tmp_path_factory):
    """`rvlf export RUN/best --out DIR` of the demo-shaped GRPO run."""
    out = tmp_path_factory.mktemp("export") / "rvlf-tiny-grpo"
    assert cli(["export", str(tiny_grpo_run / "best"), "--out", str(out)]) == 0
    return out


def test_export_of_the_grpo_checkpoint_translates_like_the_run(tiny_grpo_run, exported, fixtures_dir, capsys):
    files = {p.name for p in exported.iterdir()}
    assert files == {"README.md", "results.json", "rvlf_model.json", "config.yaml", "model.safetensors",
                     "language_model", "llm_tokenizer", "dinov2"}
    assert (exported / "language_model" / "model.safetensors").is_file()
    assert (exported / "dinov2" / "model.safetensors").is_file()
    info = json.loads((exported / "rvlf_model.json").read_text())
    assert info["stage"] == "grpo" and info["language_model"] == "merged" and info["dinov2"] == "dinov2"

    video = fixtures_dir / "signer_58frames.mp4"
    outputs = []
    for checkpoint in (tiny_grpo_run / "best", exported):
        capsys.readouterr()
        assert cli(["translate", str(video), "--checkpoint", str(checkpoint), "--num-beams", "5",
                    "--device", "cpu"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].startswith("signer_58frames\t")
    text = SignTranslator.from_pretrained(exported, device="cpu").translate(video, num_beams=5)
    assert outputs[1] == f"signer_58frames\t{one_line(text)}\n"  # the CLI prints one line a file


def test_model_card_follows_the_hub_metadata_spec(tiny_grpo_run, exported):
    from huggingface_hub import ModelCard

    card = ModelCard.load(exported / "README.md")
    data = card.data
    assert data.language == ["en"] and data.library_name == "rvlf"
    assert "sign-language-translation" in data.tags and "slt-grpo" in data.tags
    assert data.datasets == ["toy"] and data.metrics == ["bleu", "rouge"]
    assert data.license == "other" and data.license_name  # the toy corpus says nothing about its terms

    state = json.loads((tiny_grpo_run / "best" / "trainer_state.json").read_text())
    results = json.loads((tiny_grpo_run / "results.json").read_text())
    expected = {"dev": state["best_dev"], "test": results["test"]}
    found = {(r.dataset_split, r.metric_name): r.metric_value for r in data.eval_results}
    for split, scores in expected.items():
        assert found[(split, f"BLEU-4 ({split})")] == round(scores["bleu4"], 2)
        assert found[(split, f"ROUGE-L ({split})")] == round(scores["rouge_l"], 2)
        assert found[(split, f"BLEU-1 ({split})")] == round(scores["bleu1"], 2)
    assert all(r.task_type == "translation" for r in data.eval_results)
    assert json.loads((exported / "results.json").read_text())["test"] == results["test"]

    text = card.text
    for needle in ("## Scores", "## Intended use and limits", "## Training", "## Citation", "arXiv:2512.07273",
                   "rvlf grpo --config config.yaml --init runs/sft/best", "rvlf translate VIDEO.mp4 --checkpoint .",
                   "SignTranslator.from_pretrained", "not a replacement for a qualified interpreter",
                   "first 4 dev samples"):
        assert needle in text, needle
    # the scores name their protocol, and sacrebleu's standard BLEU-4 stands beside them (issue #30)
    std = results["test_sacrebleu"]
    assert f"Protocol signature: `{results['protocol']['signature']}`" in text
    assert f"{std['bleu4']:.2f} (`{std['signature']}`)" in text and "tok:13a" in std["signature"]
    assert json.loads((exported / "results.json").read_text())["protocol"] == results["protocol"]


@pytest.mark.parametrize("stage", ["s1", "sft"])
def test_earlier_stages_export_and_decode_the_same(tiny_grpo_run, fixtures_dir, tmp_path, stage):
    from rvlf.inference.export import export_model

    checkpoint = tiny_grpo_run.parent / stage / "best"
    out = export_model(checkpoint, tmp_path / "model")
    info = json.loads((out / "rvlf_model.json").read_text())
    assert info["stage"] == {"s1": "pretrain", "sft": "sft"}[stage]
    assert (out / ("tokenizer" if stage == "s1" else "language_model")).is_dir()
    assert not (out / "trainer_state.json").exists() and not (out / "optimizer.safetensors").exists()
    pose = fixtures_dir / "holistic_97frames.pose"
    a = SignTranslator.from_pretrained(checkpoint, device="cpu").translate(pose, num_beams=3, return_scores=True)
    b = SignTranslator.from_pretrained(out, device="cpu").translate(pose, num_beams=3, return_scores=True)
    assert_same_nbest(a, b)


def test_reference_export_loads_the_base_lm_by_hub_id(tiny_grpo_run, fixtures_dir, tmp_path, monkeypatch):
    """An SFT run on a hub LM (here: the tiny base put in a hub cache as `rvlf-test/tiny-qwen3`)
    exports its adapters only; loading fetches the base by id from the cache, offline."""
    import huggingface_hub.constants as hub_constants

    from rvlf.config import load_config, to_yaml
    from rvlf.train.recipe_configs import SFTConfig

    sft = tiny_grpo_run.parent / "sft" / "best"
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--rvlf-test--tiny-qwen3"
    shutil.copytree(sft / "base_lm", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    checkpoint = tmp_path / "run" / "best"  # the same checkpoint, as if trained on the hub LM
    shutil.copytree(sft, checkpoint, ignore=shutil.ignore_patterns("base_lm"))
    cfg = load_config(SFTConfig, sft / "config.yaml")
    cfg.llm.tiny, cfg.llm.name_or_path = {}, "rvlf-test/tiny-qwen3"
    (checkpoint / "config.yaml").write_text("stage: sft\n" + to_yaml(cfg))

    out = tmp_path / "model"
    assert cli(["export", str(checkpoint), "--out", str(out), "--base", "reference"]) == 0
    info = json.loads((out / "rvlf_model.json").read_text())
    assert info["language_model"] == "reference" and info["base_model"] == "rvlf-test/tiny-qwen3"
    assert not (out / "language_model").exists() and not (out / "base_lm").exists()
    from huggingface_hub import ModelCard

    assert ModelCard.load(out / "README.md").data.base_model == "rvlf-test/tiny-qwen3"
    pose = fixtures_dir / "holistic_97frames.pose"
    a = SignTranslator.from_pretrained(sft, device="cpu").translate(pose, num_beams=3, return_scores=True)
    b = SignTranslator.from_pretrained(out, device="cpu").translate(pose, num_beams=3, return_scores=True)
    assert_same_nbest(a, b)


def test_export_refusals_are_one_line(tiny_grpo_run, tmp_path, capsys):
    capsys.readouterr()
    # --checkpoint, as translate/evaluate take it, is the same as the positional; both or neither: one line
    assert cli(["export", "--checkpoint", str(tiny_grpo_run / "best"), "--out", str(tmp_path / "m"), "--base",
                "reference"]) == 2
    assert "random tiny model that no hub has" in capsys.readouterr().err
    for argv in (["export", "--out", str(tmp_path / "m")],
                 ["export", str(tiny_grpo_run / "best"), "--checkpoint", str(tiny_grpo_run / "best"), "--out",
                  str(tmp_path / "m")]):
        assert cli(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "give the checkpoint once" in err[0], err
    assert cli(["export", str(tiny_grpo_run / "best"), "--out", str(tmp_path / "m"), "--base", "reference"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "random tiny model that no hub has" in err[0] and "--base merge" in err[0]
    assert not (tmp_path / "m").exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("\\documentclass{article}\n")
    assert cli(["export", str(tiny_grpo_run / "best"), "--out", str(busy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "busy" in err[0] and "not an rvlf model folder" in err[0]
    assert (busy / "thesis.tex").is_file()

    assert cli(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing" in err[0]


def test_a_run_folder_means_its_best_checkpoint_in_evaluate_and_translate(tiny_grpo_run, fixtures_dir, tmp_path,
                                                                         capsys):
    """`--checkpoint RUN` is RUN/best in `rvlf evaluate` and `rvlf translate`, as in `from_pretrained`,
    `rvlf export` and `rvlf app` (evaluate and translate took RUN/last: other scores for the same run)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "best").symlink_to(tiny_grpo_run / "best", target_is_directory=True)
    (run / "last").symlink_to(tiny_grpo_run.parent / "s1" / "best", target_is_directory=True)  # another model
    hyps = {}
    for name, checkpoint in (("run", run), ("best", run / "best"), ("last", run / "last")):
        out = tmp_path / f"{name}.tsv"
        assert cli(["evaluate", "--checkpoint", str(checkpoint), "--translations", str(out)]) == 0
        hyps[name] = out.read_text(encoding="utf-8")
    assert hyps["best"] != hyps["last"]  # the two checkpoints translate differently
    assert hyps["run"] == hyps["best"]
    pose = fixtures_dir / "holistic_97frames.pose"
    capsys.readouterr()
    assert cli(["translate", str(pose), "--checkpoint", str(run)]) == 0
    assert capsys.readouterr().out == f"holistic_97frames\t{SignTranslator.from_pretrained(run).translate(pose)}\n"


def _files_holding(folder, needles: list[str]) -> list[str]:
    """Every file under `folder` (text or binary, safetensors headers included) holding one of `needles`."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(folder)}: {n}" for n in needles
                      if n.encode() in data or json.dumps(n).encode() in data]
    return found


def test_an_export_holds_no_absolute_path_of_this_machine(tiny_grpo_run, exported):
    """The run's config names its base LM, data and DINOv2 by absolute paths (data.root, data.dino_model
    here; llm.name_or_path in `rvlf demo`); `rvlf_model.json` had `"source": "/home/.../grpo/best"`.
    Every file of the export is scanned for the export's own parent folder and the source run's."""
    needles = [str(exported.parent), str(exported.parent.resolve()), str(tiny_grpo_run.parent),
               str(tiny_grpo_run.parent.resolve())]
    assert _files_holding(exported, needles) == []
    info = json.loads((exported / "rvlf_model.json").read_text())
    assert info["source"] == "grpo/best" and info["dinov2"] == "dinov2"
    import yaml

    cfg = yaml.safe_load((exported / "config.yaml").read_text())
    assert cfg["data"]["root"] == "manifest.jsonl" and cfg["data"]["dino_model"] == "dino16"


def test_save_pretrained_into_a_unicode_folder_holds_no_local_path(tiny_grpo_run, tmp_path):
    """Variant: stage 1 through the Python API (`save_pretrained`), into a folder whose name has
    spaces and non-ASCII characters, from a moved copy of the run; it still loads and decodes."""
    copy = tmp_path / "moved run ü"
    shutil.copytree(tiny_grpo_run.parent / "s1" / "best", copy / "s1" / "best")
    model = SignTranslator.from_pretrained(copy / "s1" / "best", device="cpu")
    out = tmp_path / "Gebärden 模型 #1" / "model"
    model.save_pretrained(out)
    needles = [str(tmp_path), str(tmp_path.resolve()), str(tiny_grpo_run.parent)]
    assert _files_holding(out, needles) == []
    assert json.loads((out / "rvlf_model.json").read_text())["source"] == "s1/best"
    kp = __import__("numpy").ones((6, 77, 3), "float32")
    assert SignTranslator.from_pretrained(out, device="cpu").translate(kp, num_beams=1) == model.translate(kp, num_beams=1)


def test_a_model_description_with_a_key_twice_is_refused(exported, tmp_path):
    """Every JSON read from users refuses a repeated key (C13's class): `rvlf_model.json` edited by hand."""
    from rvlf.errors import InputFileError

    copy = tmp_path / "edited"
    shutil.copytree(exported, copy)
    text = (copy / "rvlf_model.json").read_text()
    (copy / "rvlf_model.json").write_text(text.replace('"stage": "grpo",', '"stage": "grpo", "stage": "sft",'))
    with pytest.raises(InputFileError, match=r"rvlf_model.json:\d+ \(column 'stage'\): key 'stage' appears twice"):
        SignTranslator.from_pretrained(copy, device="cpu")


def test_a_path_that_is_no_model_is_refused_before_torch_loads(tmp_path):
    """`rvlf export` with a checkpoint that does not exist took ~9 s (torch and transformers first)
    before its one line; so did `evaluate`, `translate` and `app`. The paths are checked first: one line, and
    torch, transformers and Gradio are never imported. Variants: an empty folder, a file, an export
    destination that is a file or someone's folder (checked before the model loads too)."""
    empty, a_file, busy, run = tmp_path / "empty", tmp_path / "notes.txt", tmp_path / "busy", tmp_path / "run"
    empty.mkdir()
    a_file.write_text("x\n")
    busy.mkdir()
    (busy / "thesis.tex").write_text("x\n")
    (run / "best").mkdir(parents=True)
    (run / "best" / "trainer_state.json").write_text("{}")  # looks like a run: the destination is what is wrong
    cases = [  # argv, the one line expected on stderr
        (["export", tmp_path / "nothing", "--out", tmp_path / "m"], f"rvlf export: error: {tmp_path / 'nothing'}: "
                                                                      "no such model folder"),
        (["export", empty, "--out", tmp_path / "m"], f"rvlf export: error: {empty}: not a model folder: no "
                                                     "rvlf_model.json (an export), no trainer_state.json (a "
                                                     "checkpoint), no best/ or last/ checkpoint (a run folder)"),
        (["export", "--checkpoint", run, "--out", a_file], f"rvlf export: error: {a_file}: exists and is a file; give "
                                                           "a folder to export to"),
        (["export", run, "--out", busy], f"rvlf export: error: {busy}: folder exists and is not an rvlf model folder; "
                                         "choose a new or empty folder"),
        (["evaluate", "--checkpoint", tmp_path / "nothing"], f"rvlf evaluate: error: {tmp_path / 'nothing'}: no such "
                                                             "model folder (and not a hub id of the form owner/name)"),
        (["evaluate", "--checkpoint", a_file], f"rvlf evaluate: error: {a_file}: is a file: give a model folder "
                                               "(exported or a checkpoint), a run folder or a hub id"),
        (["app", "--checkpoint", empty], f"rvlf app: error: {empty}: not a model folder: no rvlf_model.json"),
        (["translate", a_file, "--checkpoint", empty], f"rvlf translate: error: {empty}: not a model folder"),
    ]
    script = ("import contextlib, io, json, sys\n"
              "from rvlf.cli import main\n"
              "results = []\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    err = io.StringIO()\n"
              "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
              "        results.append((main(argv), err.getvalue()))\n"
              "print(json.dumps({'modules': sorted({m.split('.')[0] for m in sys.modules}), 'results': results}))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", script, json.dumps([[str(a) for a in argv] for argv, _ in cases])],
                          capture_output=True, text=True, env=env, check=True, timeout=120)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    modules, results = set(data["modules"]), data["results"]
    for (argv, line), (rc, err) in zip(cases, results):
        assert rc == 2 and err.count("\n") == 1 and err.startswith(line), (argv, err)
    assert not modules & {"torch", "transformers", "gradio", "safetensors"}, sorted(modules)
    assert (busy / "thesis.tex").is_file() and not (tmp_path / "m").exists()


def test_the_early_check_lets_through_what_the_loaders_take(tmp_path):
    """What only the loaders can judge passes: a hub id (evaluate, translate, app; export reads local
    checkpoints only) and a checkpoint whose save was killed mid-swap (`DIR.old`); the names it
    looks for are the loaders' own."""
    from rvlf.errors import InputFileError
    from rvlf.inference import api, model_folder
    from rvlf.inference import model_paths as _model_arg
    from rvlf.train import checkpoint

    assert (_model_arg.STATE_FILE, _model_arg.EXPORT_FILE) == (checkpoint.STATE_FILE, model_folder.EXPORT_FILE)
    assert api.looks_like_hub_id is _model_arg.looks_like_hub_id  # the API's hub-id test is the early check's
    assert model_folder.check_destination is _model_arg.check_destination  # and so is the export's destination
    _model_arg.check_model_arg("owner/model-name")
    with pytest.raises(InputFileError, match="no such model folder$"):
        _model_arg.check_model_arg("owner/model-name", hub=False)
    (tmp_path / "best.old").mkdir()
    (tmp_path / "best.old" / "trainer_state.json").write_text("{}")
    _model_arg.check_model_arg(str(tmp_path / "best"), hub=False)
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "trainer_state.json").write_text("{}")
    _model_arg.check_model_arg(str(tmp_path / "run"))
