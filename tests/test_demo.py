"""`rvlf demo --quick`: the main job end to end on a tiny corpus (all three stages, real models)."""

from __future__ import annotations

import json
import re

import torch

from helpers import cli, cli_output
from rvlf.runs.demo import METRICS, ROWS, grpo_dev_line


def test_quick_demo_runs_all_stages_and_writes_the_results(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["demo", "--quick", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    stdout = captured.out
    results = json.loads((out / "results.json").read_text())
    # one line per step with its time; stderr is no terminal here: progress comes as lines, never bar redraws
    for step, what in (("1/5", "corpus"), ("2/5", "stage 1 (pretrain)"), ("3/5", "base LM"),
                       ("4/5", "stage 2 (SLT-SFT)"), ("5/5", "stage 3 (SLT-GRPO)")):
        assert re.search(rf"^rvlf demo: {step} {re.escape(what)} done in \d+ s$", stdout, re.M), what
    assert "\r" not in captured.err and re.search(r"^rvlf demo: sft step (\d+)/\1 \(100%\), ", captured.err, re.M)
    assert re.search(r"^rvlf demo: corpus 96/96 videos \(100%\), ", captured.err, re.M)
    # every line of the command starts `rvlf demo: `, but the results table and what explains it
    table_start = stdout.index("\n| Method |")
    table_end = stdout.index("\nrvlf demo: done in ")
    log_lines = stdout[:table_start].splitlines() + stdout[table_end:].splitlines() + captured.err.splitlines()
    assert [line for line in log_lines if line and not line.startswith("rvlf demo: ")] == []
    # the dev figures say which dev subset they use (data.dev_max_samples=8 of the 16 dev sentences)
    assert results["dev"]["samples"] == {"pretrain": 8, "sft": 8, "grpo": 8} and results["dev"]["of"] == 16
    assert "on the first 8 of the 16 dev sentences" in stdout
    for key, name in ROWS:
        assert set(METRICS) <= set(results[key]), key
        assert all(0.0 <= results[key][m] <= 100.0 for m in METRICS)
        assert f"| {name} |" in stdout
    dev = results["dev"]
    assert dev["slt_grpo_baseline"]["reward"] >= 0.0
    # the GRPO row is its best checkpoint's dev scores: never below the SFT baseline it started from
    assert (dev["slt_grpo"]["bleu4"], dev["slt_grpo"]["reward"]) >= (dev["slt_grpo_baseline"]["bleu4"],
                                                                     dev["slt_grpo_baseline"]["reward"])
    assert "SLT-GRPO on dev: mean reward" in stdout
    md = (out / "results.md").read_text()
    assert "| SLT-GRPO |" in md and "Example translations" in md and "| Reference |" in md
    # the table names its protocol: the signature in results.json, under the table printed and in results.md
    sig = "slrt:en(whitespace)|nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0"
    assert results["protocol"]["signature"] == sig and f"Scores: `{sig}`" in stdout and f"Scores: `{sig}`" in md
    assert json.loads((out / "grpo" / "results.json").read_text())["test_sacrebleu"]["tokenize"] == "13a"
    for stage in ("pretrain", "sft", "grpo"):
        assert (out / stage / "learning_curve.png").stat().st_size > 1000
        assert (out / stage / "best" / "model.safetensors").is_file()
    assert set(results["seconds"]) >= {"corpus", "pretrain", "lm", "sft", "grpo", "total"}
    # SLT-SFT adapts the demo's pretrained base LM (rvlf.synth.lm), loaded from its folder like Qwen3
    assert results["base_lm"] == str((out / "lm").resolve()) and (out / "lm" / "lm.json").is_file()
    from rvlf.config import read_yaml

    llm = read_yaml(out / "sft" / "best" / "config.yaml")["llm"]
    assert llm["name_or_path"] == results["base_lm"] and not llm["tiny"] and llm["keep_base"]
    # every SFT and GRPO checkpoint carries that LM: the runs load without the demo's lm/ folder
    assert all((out / stage / "best" / "base_lm" / "model.safetensors").is_file() for stage in ("sft", "grpo"))
    assert results["seed"] == 0 and results["grpo_config"] == "grpo"
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch_threads"] >= 1
    # each stage against the one before, on the same test sentences (rvlf.text.significance)
    for pair in ("slt_sft_vs_vlp", "slt_grpo_vs_slt_sft"):
        for m in ("bleu4", "rouge_l", "chrf", "reward"):
            r = results["significance"][pair][m]
            assert r["ci95"][0] <= r["ci95"][1] and 0 < r["p_value"] <= 1
    assert "ΔB@4 [95% CI]" in stdout and "95% interval from paired bootstrap" in stdout

    # a checkpoint needs no lm/ folder: moved away, the GRPO run still decodes test to the same scores
    (out / "lm").rename(tmp_path / "lm_moved")
    rc, printed, _ = cli_output("evaluate", "--checkpoint", out / "grpo" / "best", "--split", "test")
    assert rc == 0 and json.loads(printed.strip().splitlines()[-1])["bleu4"] == round(results["slt_grpo"]["bleu4"], 2)
    # exported, it names no base model (no hub has the demo's LM) and --base reference is refused
    rc, _, _ = cli_output("export", out / "grpo" / "best", "--out", tmp_path / "exported")
    assert rc == 0 and json.loads((tmp_path / "exported" / "rvlf_model.json").read_text())["base_model"] is None
    assert "the run's own base LM `lm`" in (tmp_path / "exported" / "README.md").read_text()
    rc, _, err = cli_output("export", out / "grpo" / "best", "--out", tmp_path / "ref", "--base", "reference")
    assert rc != 0 and "the run's own copy (llm.keep_base) that no hub has" in err and len(err.splitlines()) == 1
    (tmp_path / "lm_moved").rename(out / "lm")

    # run again into the same folder: every stage finished with the same config, code and threads is kept
    def weights_written():
        return {stage: (out / stage / "best" / "model.safetensors").stat().st_mtime_ns
                for stage in ("pretrain", "sft", "grpo")} | {"lm": (out / "lm" / "model.safetensors").stat().st_mtime_ns}

    weights = weights_written()

    # the ablations (Tables 5 and 6) train SLT-SFT on the same base LM as the demo's SFT
    from rvlf.runs.demo import DemoSize, run_ablations

    abl = run_ablations(out, which=("no_dino",), size=DemoSize.quick(), progress=False)
    assert set(abl) == {"full", "no_dino"} and "| SLT-SFT w/o DINOv2 |" in (out / "ablation.md").read_text()
    assert read_yaml(out / "ablations" / "no_dino" / "best" / "config.yaml")["llm"]["name_or_path"] == results["base_lm"]
    capsys.readouterr()
    assert cli(["demo", "--quick", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.count(": kept from an earlier run") == 4 and "| SLT-GRPO |" in stdout
    assert weights_written() == weights
    assert json.loads((out / "results.json").read_text())["slt_grpo"] == results["slt_grpo"]

    # `rvlf demo --long` into it runs every stage whose config differs (with --quick, whose overrides set every
    # stage's epochs to 1, only the dev interval of stage 1 and GRPO's schedule differ)
    assert cli(["demo", "--quick", "--long", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    # (the base LM reads the same text for --long: kept)
    assert stdout.count(": kept from an earlier run") == 1 and "base LM" in stdout.split(": kept from")[0].splitlines()[-1]
    assert "stage 1: visual-language pre-training (long)" in stdout and "stage 3: SLT-GRPO (long)" in stdout
    rewritten = weights_written()
    assert rewritten.pop("lm") == weights["lm"]
    assert all(rewritten[stage] != weights[stage] for stage in rewritten)
    long = json.loads((out / "results.json").read_text())
    assert (long["pretrain_config"], long["sft_config"], long["grpo_config"]) == ("pretrain_long", "sft_long",
                                                                                   "grpo_long")

    # another base LM in the same folder: SFT and GRPO run again, and their checkpoints carry the new LM,
    # not the copy the earlier run left in sft/base_lm and grpo/base_lm
    import dataclasses

    from safetensors.torch import load_file

    from rvlf.runs.demo import run_demo

    run_demo(out, size=dataclasses.replace(DemoSize.quick().with_long(), lm={"n_sentences": 200, "epochs": 1}),
             progress=False)
    new_lm = load_file(out / "lm" / "model.safetensors")
    for stage in ("sft", "grpo"):
        copy = load_file(out / stage / "best" / "base_lm" / "model.safetensors")
        assert set(copy) == set(new_lm) and all(torch.equal(copy[k], new_lm[k]) for k in new_lm), stage


def test_a_demo_stage_is_kept_only_when_finished_with_the_same_stamp(tmp_path):
    from rvlf.runs.demo import STAMP_FILE, finished_stage

    run = tmp_path / "sft"
    stamp = {"config": {"train": {"lr": 0.003}}, "code": "abc", "torch_threads": 2}
    assert finished_stage(run, stamp) is None  # nothing there
    (run / "best").mkdir(parents=True)
    (run / STAMP_FILE).write_text(json.dumps(stamp))
    assert finished_stage(run, stamp) is None  # cut short: no results.json
    (run / "results.json").write_text(json.dumps({"test": {"bleu4": 1.0}}))
    assert finished_stage(run, stamp) == {"test": {"bleu4": 1.0}}
    for other in ({**stamp, "torch_threads": 1}, {**stamp, "code": "abd"}, {**stamp, "config": {"train": {"lr": 0.001}}}):
        assert finished_stage(run, other) is None
    (run / STAMP_FILE).write_text("{not json")
    assert finished_stage(run, stamp) is None


def test_grpo_dev_line_reports_before_and_after():
    dev = {"slt_grpo_baseline": {"reward": 40.27, "bleu4": 31.3}, "slt_grpo": {"reward": 41.42, "bleu4": 32.5}}
    line = grpo_dev_line(dev)
    assert "40.27 (SLT-SFT, before) -> 41.42" in line and "31.30 -> 32.50" in line
    assert grpo_dev_line({"slt_grpo": None}) == ""


def test_demo_table_shows_each_stage_against_the_one_before(tmp_path):
    from rvlf.runs.demo import format_table, significance, significance_line

    refs = [f"the cat sat on mat number {i}" for i in range(60)]
    for run, hyps in (("pretrain", ["a dog ran"] * 60), ("sft", refs), ("grpo", refs)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "test_translations.tsv").write_text(
            "".join(f"s{i}\t{h}\t{r}\n" for i, (h, r) in enumerate(zip(hyps, refs))))
    sig = significance(tmp_path)
    assert set(sig) == {"slt_sft_vs_vlp", "slt_grpo_vs_slt_sft"}
    assert set(sig["slt_sft_vs_vlp"]) == {"bleu4", "rouge_l", "chrf", "reward"}
    assert sig["slt_sft_vs_vlp"]["bleu4"]["p_value"] < 0.05 and sig["slt_grpo_vs_slt_sft"]["bleu4"]["diff"] == 0
    scores = {m: 50.0 for m in ("rouge_l", "bleu1", "bleu2", "bleu3", "bleu4", "reward")}
    table = format_table({"vlp": scores, "slt_sft": scores, "slt_grpo": scores, "significance": sig})
    rows = table.splitlines()
    assert "ΔB@4 [95% CI]" in rows[0] and "Δreward [95% CI]" in rows[0]
    assert rows[2].endswith("| – | – |")
    assert "| +100.00 [+100.00, +100.00] |" in rows[3]
    assert rows[4].endswith("| +0.00 [+0.00, +0.00] (n.s.) | +0.00 [+0.00, +0.00] (n.s.) |")
    assert "95% interval" in significance_line({"significance": sig})
    assert "Δ" not in format_table({"vlp": scores})  # results.json of older demos: the paper's columns only


def test_long_demo_gives_grpo_the_papers_two_epochs_and_changes_nothing_else():
    import dataclasses
    import math

    from rvlf.config import load_config, to_dict
    from rvlf.runs.demo import DemoSize, demo_config
    from rvlf.train.recipe_configs import GRPOConfig

    base = to_dict(load_config(GRPOConfig, demo_config("grpo")))
    long = to_dict(load_config(GRPOConfig, demo_config("grpo_long")))
    assert long["train"]["epochs"] == 2 and long["train"]["eval_every_steps"] == 50
    assert long["train"]["scheduler"] == "cosine" and long["data"]["dev_max_samples"] == 0  # whole dev split
    assert long["grpo"]["mu"] == 2 and base["grpo"]["mu"] == 1  # two updates per sampled batch: Eq. 19 clips
    size = DemoSize()
    assert math.ceil(size.n_train / long["train"]["batch_size"]) * long["train"]["epochs"] == 500  # steps
    assert math.ceil(size.n_train / base["train"]["batch_size"]) * base["train"]["epochs"] == 50
    for cfg in (base, long):
        for key in ("epochs", "eval_every_steps", "lr", "scheduler"):
            del cfg["train"][key]
        del cfg["data"]["dev_max_samples"]
        del cfg["grpo"]["mu"]
    assert long == base  # same sampling, reward, KL, LoRA, batch and model as the default demo
    assert size.with_long().long and not size.long
    assert dataclasses.replace(size.with_long(), pretrain_config="pretrain", sft_config="sft", grpo_config="grpo",
                               lm=size.lm) == size


def test_long_demo_stage1_and_sft_differ_from_the_default_only_in_schedule():
    """`--long` runs the stage-1 and SFT configs the docs/demo-grpo.md tables were made with: the
    default demo's for 28 and 12 epochs (dev every 7 and 4), SFT at a constant lr (no final decay:
    GRPO's 2 epochs follow); `make demo` runs 12 and 10 epochs, SFT with its wsd decay."""
    from rvlf.config import load_config, to_dict
    from rvlf.runs.demo import DemoSize, demo_config
    from rvlf.train.recipe_configs import PretrainConfig, SFTConfig

    long = DemoSize().with_long()
    assert (long.pretrain_config, long.sft_config) == ("pretrain_long", "sft_long")
    schedules = ((PretrainConfig, "pretrain", (12, 6, "constant"), (28, 7, "constant")),
                 (SFTConfig, "sft", (10, 4, "wsd"), (12, 4, "constant")))
    for cls, name, short_schedule, long_schedule in schedules:
        short = to_dict(load_config(cls, demo_config(name)))
        longer = to_dict(load_config(cls, demo_config(name + "_long")))
        for cfg, schedule in ((short, short_schedule), (longer, long_schedule)):
            assert tuple(cfg["train"].pop(k) for k in ("epochs", "eval_every_epochs", "scheduler")) == schedule
        assert short == longer


def test_demo_long_flag_runs_the_long_grpo_into_its_own_folder(monkeypatch, tmp_path):
    import rvlf.runs.demo

    calls = []
    monkeypatch.setattr(rvlf.runs.demo, "run_demo", lambda out, **kw: calls.append((out, kw)))
    monkeypatch.chdir(tmp_path)
    assert cli(["demo", "--long", "--seed", "2"]) == 0
    assert cli(["demo"]) == 0
    assert cli(["demo", "--quick", "--long", "--out", "x"]) == 0
    (long_out, long_kw), (out, kw), (quick_out, quick_kw) = calls
    assert long_out == "runs/demo-long" and long_kw["seed"] == 2 and long_kw["size"].grpo_config == "grpo_long"
    assert long_kw["size"].n_train == 2000 and not long_kw["size"].overrides
    assert out == "runs/demo" and kw["seed"] == 0 and kw["size"].grpo_config == "grpo"
    assert quick_out == "x" and quick_kw["size"].long and quick_kw["size"].n_train == 64


def test_the_code_stamp_covers_every_module_of_the_package(monkeypatch, tmp_path):
    """A demo stage is kept only for the same code: a change to a training module (not only to
    rvlf/runs/, where the demo module lives) must change `code_digest`."""
    import rvlf.runs.demo as demo

    package = tmp_path / "rvlf"
    for name, text in (("runs/demo.py", "# the demo\n"), ("train/loop.py", "x = 1\n"), ("cli.py", "y = 2\n")):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(demo, "__file__", str(package / "runs" / "demo.py"))
    digests = []
    for change in ("", "train/loop.py", "cli.py"):
        if change:
            (package / change).write_text("z = 3\n", encoding="utf-8")
        demo.code_digest.cache_clear()
        digests.append(demo.code_digest())
    demo.code_digest.cache_clear()
    assert len(set(digests)) == 3, digests
