"""`rvlf evaluate` on stage-1 and SFT checkpoints, its translations file and its errors."""

from __future__ import annotations

import json

import pytest

from helpers import cli, tiny_runs

SCORES = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "reward")



@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(manifest, stage-1 run folder, SFT run folder), both trained for a few steps."""
    return tiny_runs(tmp_path_factory.mktemp("evaluate"), sft_steps=1)


def _evaluate(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert cli(["evaluate", *argv]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _manifest_texts(manifest, split: str) -> dict[str, str]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    return {r["id"]: r["text"] for r in rows if r["split"] == split}


@pytest.mark.parametrize("which", ["stage1", "sft"])
def test_evaluate_prints_the_scores(runs, capsys, which):
    _, s1, sft = runs
    ckpt = (s1 if which == "stage1" else sft) / "best"
    out = _evaluate(capsys, "--checkpoint", str(ckpt), "--split", "test", "--num-beams", "1")
    assert out["checkpoint"] == str(ckpt) and out["split"] == "test" and out["samples"] == 4
    for key in SCORES:
        assert isinstance(out[key], float) and 0.0 <= out[key] <= 100.0, key
    assert out["bleu1"] >= out["bleu4"]


def test_evaluate_accepts_a_run_folder_and_max_samples(runs, capsys):
    _, _, sft = runs
    out = _evaluate(capsys, "--checkpoint", str(sft), "--split", "dev", "--num-beams", "1", "--max-samples", "2")
    assert out["split"] == "dev" and out["samples"] == 2


@pytest.mark.parametrize("which", ["stage1", "sft"])
def test_translations_file_has_id_hyp_ref_lines(runs, capsys, tmp_path, which):
    from rvlf.rl.rewards import translation_reward
    from rvlf.text.metrics import corpus_scores

    manifest, s1, sft = runs
    path = tmp_path / "test.tsv"
    out = _evaluate(capsys, "--checkpoint", str((s1 if which == "stage1" else sft) / "last"), "--split", "test",
                    "--num-beams", "1", "--translations", str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    refs = _manifest_texts(manifest, "test")
    assert len(lines) == out["samples"] == len(refs)
    ids, hyps, got_refs = zip(*(line.split("\t") for line in lines))
    assert set(ids) == set(refs)
    assert all(refs[i] == r for i, r in zip(ids, got_refs))
    # the printed scores are the scores of the written translations
    scores = corpus_scores(list(hyps), list(got_refs), "en")
    assert out["bleu4"] == pytest.approx(scores["bleu4"], abs=0.01)
    assert out["rouge_l"] == pytest.approx(scores["rouge_l"], abs=0.01)
    rewards = translation_reward(list(hyps), list(got_refs), "en")
    assert out["reward"] == pytest.approx(100 * sum(rewards) / len(rewards), abs=0.01)



def test_a_translations_path_that_cannot_be_written_is_refused_before_decoding(runs, capsys, tmp_path):
    """`--translations afile/x.tsv` said `File exists (EEXIST)` after the whole split was decoded; a folder
    said `Is a directory`. Both are one line, exit 2, before anything is decoded (stdout empty)."""
    _, _, sft = runs
    folder, afile = tmp_path / "out", tmp_path / "afile"
    folder.mkdir()
    afile.write_text("")
    for path, says in ((folder, f"--translations {folder}: is a folder; give the file to write, e.g. "
                                f"--translations {folder / 'translations.tsv'}"),
                       (afile / "x.tsv", f"--translations {afile / 'x.tsv'}: {afile} is a file, not a folder")):
        capsys.readouterr()
        rc = cli(["evaluate", "--checkpoint", str(sft / "best"), "--split", "test", "--translations", str(path)])
        out, err = capsys.readouterr()
        assert (rc, out, err) == (2, "", f"rvlf evaluate: error: {says}\n"), path
    assert not any(folder.iterdir()) and afile.read_text() == ""


def test_scores_are_in_the_language_of_the_evaluated_data(runs, capsys, tmp_path):
    """`data.lang` / `data.dataset` overrides at evaluate time: the scores and signatures were those of the
    checkpoint's own language (an English model scored on Chinese references by whitespace, `slrt:en`);
    now the references' language decides (Chinese by character)."""
    from rvlf.text.metrics import corpus_scores

    manifest, s1, _ = runs
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    zh = tmp_path / "zh.jsonl"
    with zh.open("w", encoding="utf-8") as fh:
        for row in (r for r in rows if r["split"] == "test"):
            # the toy texts behind one Chinese word: by character they share far more with the model's output
            row.update(lang="zh", text="你好 " + row["text"],
                       features=str((manifest.parent / row["features"]).resolve()))
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    path = tmp_path / "t.tsv"
    out = _evaluate(capsys, "--checkpoint", str(s1 / "best"), "--num-beams", "1", "--translations", str(path),
                    f"data.root={zh}", "data.lang=zh")
    assert out["signature"].startswith("slrt:zh(characters)|")
    assert out["sacrebleu"]["signature"].startswith("sacrebleu:zh|")
    _, hyps, refs = zip(*(line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()))
    by_char, by_word = (corpus_scores(list(hyps), list(refs), lang) for lang in ("zh", "en"))
    assert out["bleu1"] == pytest.approx(by_char["bleu1"], abs=0.01) and by_char["bleu1"] > by_word["bleu1"] + 10
    assert out["rouge_l"] == pytest.approx(by_char["rouge_l"], abs=0.01)

@pytest.mark.parametrize("kind", ["missing", "empty", "run_without_checkpoint"])
def test_bad_checkpoint_folder_exits_2_with_one_line(runs, capsys, tmp_path, kind):
    folder = tmp_path / "ckpt"
    if kind == "empty":
        folder.mkdir()
    elif kind == "run_without_checkpoint":
        (folder / "tensorboard").mkdir(parents=True)
        (folder / "metrics.jsonl").write_text("{}\n")
    capsys.readouterr()
    rc = cli(["evaluate", "--checkpoint", str(folder), "--split", "test"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rvlf evaluate: error:") and str(folder) in lines[0]


def test_checkpoint_without_config_names_the_folder(runs, capsys, tmp_path):
    import shutil

    _, s1, _ = runs
    broken = tmp_path / "broken"
    shutil.copytree(s1 / "last", broken)
    (broken / "config.yaml").unlink()
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(broken)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(broken) in lines[0] and "config.yaml" in lines[0]


def test_only_data_overrides_are_accepted(runs, capsys, tmp_path):
    manifest, s1, _ = runs
    assert cli(["evaluate", "--checkpoint", str(s1 / "last"), "train.num_beams=3"]) == 2
    assert "data.*" in capsys.readouterr().err
    # a data override does apply: the corpus moved to another folder
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(manifest.parent, moved)
    out = _evaluate(capsys, "--checkpoint", str(s1 / "last"), "--split", "test", "--num-beams", "1",
                    f"data.root={moved / 'manifest.jsonl'}")
    assert out["samples"] == 4
    assert cli(["evaluate", "--checkpoint", str(s1 / "last"), "--split", "test",
                 f"data.root={tmp_path / 'nowhere.jsonl'}"]) == 2
    assert str(tmp_path / "nowhere.jsonl") in capsys.readouterr().err


@pytest.mark.parametrize("which", ["stage1", "sft"])
def test_a_broken_split_is_named_before_the_weights_load(runs, capsys, tmp_path, which):
    """The data are read and checked before the checkpoint's weights (broken here, so loading them
    first would name the weights): a missing manifest and a manifest line that is not JSON are each
    one line naming the file; with good data the broken weights are what is reported."""
    import shutil

    manifest, s1, sft = runs
    ckpt = tmp_path / "ckpt"
    shutil.copytree((s1 if which == "stage1" else sft) / "last", ckpt)
    (ckpt / "model.safetensors").write_bytes(b"not safetensors")
    corpus = tmp_path / "corpus"
    shutil.copytree(manifest.parent, corpus)
    bad = corpus / "manifest.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    for root, name in ((tmp_path / "nowhere" / "manifest.jsonl", "manifest.jsonl"), (bad, str(bad))):
        capsys.readouterr()
        rc = cli(["evaluate", "--checkpoint", str(ckpt), "--split", "test", f"data.root={root}"])
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert rc == 2 and len(lines) == 1, lines
        assert name in lines[0] and "model.safetensors" not in lines[0], lines
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(ckpt), "--split", "test"]) == 2
    assert "model.safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "translate"])
def test_checkpoint_of_an_unknown_stage_names_its_config(runs, capsys, tmp_path, fixtures_dir, command):
    import shutil

    _, s1, _ = runs
    broken = tmp_path / "broken"
    shutil.copytree(s1 / "last", broken)
    config = broken / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("stage: pretrain", "stage: finetune"),
                      encoding="utf-8")
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(broken)] if command == "evaluate" else \
        ["translate", str(fixtures_dir / "holistic_97frames.pose"), "--checkpoint", str(broken)]
    assert cli(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(config) in lines[0] and "'finetune'" in lines[0], lines


def _relative_project(runs, tmp_path):
    """`PROJ/{toy/, runs/sft/best}` with the checkpoint's `data.root` relative to PROJ (as a run
    started in PROJ with `data.root=toy/manifest.jsonl` records it), and an empty folder to run from."""
    import shutil

    import yaml

    manifest, _, sft = runs
    proj = tmp_path / "proj"
    shutil.copytree(manifest.parent, proj / "toy")
    shutil.copytree(sft / "best", proj / "runs" / "sft" / "best")
    cfg_path = proj / "runs" / "sft" / "best" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["data"]["root"] = f"toy/{manifest.name}"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return proj, elsewhere


def test_a_moved_checkpoint_evaluated_from_elsewhere_finds_its_data(runs, capsys, tmp_path, monkeypatch):
    """A relative `data.root` is relative to the folder training ran in: looked for above the checkpoint."""
    proj, elsewhere = _relative_project(runs, tmp_path)
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(proj / "runs" / "sft" / "best"), "--num-beams", "1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["samples"] == 4
    assert f"note: data.root toy/{runs[0].name} (the checkpoint's config) found as {proj / 'toy' / runs[0].name}" in err


def test_an_export_evaluated_from_elsewhere_says_which_data_root_to_pass(runs, capsys, tmp_path, monkeypatch):
    """The issue's recipe: `rvlf evaluate --checkpoint EXPORT` from another folder said only
    "runs/demo/corpus/manifest.jsonl: dataset root not found"; now one line names data.root=."""
    proj, elsewhere = _relative_project(runs, tmp_path)
    monkeypatch.chdir(proj)
    assert cli(["export", "runs/sft/best", "--out", str(tmp_path / "export")]) == 0
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(tmp_path / "export"), "--num-beams", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rvlf evaluate: error: {tmp_path / 'export'}: data.root 'toy/{runs[0].name}' (from its config.yaml) "
                   f"is not found from {elsewhere}; pass data.root=PATH (the dataset: a manifest .jsonl or the "
                   f"release folder), e.g. rvlf evaluate --checkpoint {tmp_path / 'export'} --split test "
                   "data.root=PATH")
    assert cli(["evaluate", "--checkpoint", str(tmp_path / "export"), "--num-beams", "1",
                f"data.root={proj / 'toy' / runs[0].name}"]) == 0
