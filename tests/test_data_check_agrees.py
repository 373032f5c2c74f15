"""`rvlf data check` applies the very checks training applies before step 1 (the same code:
`rvlf.data.checks.read_checked` and `check_feature_set`), exits non-zero with training's one-line
messages, for every dataset kind; it names missing videos; a manifest mixing languages is told to
hold one; a language whose script the texts contradict (`--lang zh` on German) is refused in data
check, training, `rvlf score` and `rvlf compare`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import PRETRAIN, cli_argv, nothing_trained, write_toy_corpus
from rvlf.data.checks import find_feature_file
from rvlf.data.features import save_video_features
from rvlf.data.readers import read_dataset
from rvlf.data.safe_pickle import safe_load


def _training_lines(err: str) -> list[str]:
    """The sample lines of training's FeatureSetError (one line, or a header and indented lines)."""
    lines = err.strip().splitlines()
    if len(lines) == 1:
        return [lines[0].removeprefix("rvlf pretrain: error: ").split(" (checked before training")[0]]
    return [line.strip() for line in lines[1:]]


def _check_agrees_with_pretrain(tmp_path: Path, check_args: list, train_args: list) -> list[str]:
    """Run data check and pretrain on one dataset: both stop, on the same lines; returns them."""
    rc, out, err = cli_argv(["data", "check", *check_args, "--json"])
    report = json.loads(out)
    assert rc == 1, (out, err)
    run = tmp_path / "run"
    rc2, _, err2 = cli_argv([*PRETRAIN, "--out", run, *train_args])
    assert rc2 == 2, err2
    nothing_trained(run)
    assert report["training_problems"] == _training_lines(err2), (report["training_problems"], err2)
    rc, out, _ = cli_argv(["data", "check", *check_args])  # the text output names them too
    assert rc == 1 and all(f"  {line}\n" in out for line in report["training_problems"]), out
    return report["training_problems"]


def test_manifest_line_training_refuses_fails_the_check(tmp_path):
    """The trial's case: a demo-style manifest plus a line whose video does not exist and that has no
    `features`. Data check said exit 0 ("missing videos 1"); training stopped on it. Variants: a line
    with keypoints only, a `features` path that does not exist, an empty text."""
    corpus = write_toy_corpus(tmp_path / "toy", n_train=4, n_dev=1, n_test=1)
    rows = corpus.read_text().splitlines()
    base = len(rows)
    extra = [{"id": "w", "split": "train", "text": "hi", "lang": "en", "video": "missing.mp4"},
             {"id": "k", "split": "dev", "text": "hi", "lang": "en", "keypoints": "k.pose"},
             {"id": "f", "split": "test", "text": "hi", "lang": "en", "features": "features/nope.npz"},
             {"id": "e", "split": "train", "text": " ", "lang": "en", "features": "features/s0.npz"}]
    for i, row in enumerate(extra):
        corpus.write_text("\n".join(rows + [json.dumps(r) for r in extra[:i + 1]]) + "\n")
        lines = _check_agrees_with_pretrain(tmp_path, ["--dataset", "manifest", "--root", corpus],
                                            [f"data.root={corpus}"])
        assert len(lines) == i + 1
    assert lines[0] == (f"train/w: {corpus}:{base + 1}: no feature file: set data.features_dir or give "
                        "`features` in the manifest")
    rc, out, _ = cli_argv(["data", "check", "--dataset", "manifest", "--root", corpus, "--json"])
    report = json.loads(out)
    assert [x["path"] for x in report["missing_videos"]] == [str(corpus.parent / "missing.mp4")]
    assert report["empty_texts"] == [{"id": "e", "split": "train", "where": f"{corpus}:{base + 4}"}]


def test_an_unreadable_keypoint_file_is_named(tmp_path, fixtures_dir):
    """A manifest's `keypoints` file (frame counts come from it) that cannot be read: exit 2, named."""
    bad = tmp_path / "bad.pose"
    bad.write_bytes((fixtures_dir / "holistic_97frames.pose").read_bytes()[:100])
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"id": "a", "split": "train", "text": "a b", "lang": "en", "keypoints": "bad.pose"}) + "\n")
    rc, out, err = cli_argv(["data", "check", "--dataset", "manifest", "--root", path])
    assert rc == 2 and f"1 unreadable keypoint files:\n  train/a: {bad}: " in out, (out, err)


def _write_features_but_one(samples, feats: Path, skip: str) -> None:
    feats.mkdir()
    rng = np.random.default_rng(0)
    for s in samples:
        if s.id != skip:  # where `rvlf extract` puts it, or FEATS/<id>.npz
            path = find_feature_file(s, feats)
            if not path.exists():
                save_video_features(path, rng.uniform(0, 200, (4, 77, 3)).astype(np.float32), None, {})


KINDS = [  # kind, root under real_formats, language, extra check args / training args
    ("phoenix2014t", "phoenix2014t/PHOENIX-2014-T", "de", [], []),
    ("csl-daily", "csl_daily", "zh", [], []),
    ("how2sign", "how2sign", "en", [], []),
    ("openasl", "openasl", "en", [], []),
    ("labels", "labels.test", "de", ["--lang", "de"], ["data.lang=de"]),
]


@pytest.mark.parametrize("kind, root, lang, check_extra, train_extra", KINDS, ids=[k[0] for k in KINDS])
def test_every_kind_data_check_stops_where_training_does(fixtures_dir, tmp_path, kind, root, lang, check_extra,
                                                         train_extra):
    root = fixtures_dir / "real_formats" / root
    samples = read_dataset(kind, root, lang=lang if kind == "labels" else None)
    ids = [s.id for s in samples]
    gone = [s for s in samples if ids.count(s.id) == 1][-1]  # How2Sign's test ids are train ids too
    feats = tmp_path / "F"
    _write_features_but_one(samples, feats, skip=gone.id)
    lines = _check_agrees_with_pretrain(
        tmp_path, ["--dataset", kind, "--root", root, "--features", feats, *check_extra],
        [f"data.dataset={kind}", f"data.root={root}", f"data.features_dir={feats}", f"data.lang={lang}",
         *train_extra])
    assert len(lines) == 1 and lines[0].startswith(f"{gone.split}/{gone.id}: ") and "feature file not found" in lines[0]
    # it names where `rvlf extract` writes it (the most specific place, e.g. F/test/NAME.npz) and the others tried
    from rvlf.data.checks import feature_candidates

    tried = feature_candidates(gone, feats)
    assert f"{gone.split}/{gone.id}: {tried[0]}: feature file not found" in lines[0], lines[0]
    assert all(str(p.relative_to(feats)) in lines[0] for p in tried[1:]), lines[0]


def test_before_extraction_the_check_says_features_are_not_checked(fixtures_dir, capsys):
    """No --features and no manifest `features`: a release looked at before `rvlf extract`; the
    feature checks cannot run, and the check says so rather than listing every sample."""
    rc, out, err = cli_argv(["data", "check", "--dataset", "phoenix", "--root",
                             fixtures_dir / "real_formats" / "phoenix2014t" / "PHOENIX-2014-T"])
    assert rc == 0 and "feature files not checked" in out and "--features" in out, (out, err)
    assert out.splitlines()[-1] == "exit 0: the release reads well (feature files not checked)", out


EXITS = [  # kind, root under real_formats, extra args, exit code, what the last line names
    # the real release's split list names one clip the pkl lacks, the pkl one no split lists; no frames here
    ("csl-daily", "csl_daily", [], 1, ["1 split-list names without annotations (training skips them)",
                                       "1 annotations in no split list (training never uses them)",
                                       "7 missing videos"]),
    ("how2sign", "how2sign", [], 1, ["15 missing videos"]),
    ("openasl", "openasl", [], 1, ["4 missing videos"]),
    ("labels", "labels.test", ["--lang", "de"], 1, ["1 missing videos"]),
    # variant: the label file's frame folder found through --video-root: nothing wrong
    ("labels", "labels.test", ["--lang", "de", "--video-root", "phoenix2014t/PHOENIX-2014-T/features/"
                               "fullFrame-210x260px"], 0, ["the release reads well"]),
    ("phoenix2014t", "phoenix2014t/PHOENIX-2014-T", [], 0, ["the release reads well"]),
]


@pytest.mark.parametrize("kind, root, extra, code, why", EXITS, ids=[f"{e[0]}-{e[3]}" for e in EXITS])
def test_every_reader_exit_code_says_what_training_would_do_each_problem_once(fixtures_dir, kind, root, extra, code,
                                                                               why):
    """The trial's case: CSL-Daily as released (split list and pkl disagree) without its frames
    exited 0 and printed the split-list warning twice (the reader's log line, then the list).
    Training would skip a listed name and could not extract missing videos: exit 1, each problem
    said once (stdout and stderr together, as a user sees them), the last line saying why."""
    real = fixtures_dir / "real_formats"
    extra = [str(real / a) if "/" in a else a for a in extra]
    proc = subprocess.run([sys.executable, "-m", "rvlf", "data", "check", "--dataset", kind, "--root", str(real / root),
                           *extra], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert proc.stderr == "", proc.stderr  # everything is in the report, nothing logged beside it
    last = proc.stdout.splitlines()[-1]
    assert last.startswith(f"exit {code}: ") and all(w in last for w in why), last
    if kind == "csl-daily":
        both = proc.stdout + proc.stderr
        assert both.count("S000005_P0004_T00") == 1 and both.count("S000007_P0003_T00") == 1, both


def test_training_still_warns_of_a_skipped_split_list_name(fixtures_dir, caplog):
    """Training (no report of its own) still logs the skipped name once: only data check is quiet."""
    import logging

    from rvlf.config import DataConfig
    from rvlf.data.checks import read_checked

    with caplog.at_level(logging.WARNING, logger="rvlf.data"):
        read_checked(DataConfig(dataset="csl-daily", root=str(fixtures_dir / "real_formats" / "csl_daily")))
    assert [r.getMessage().count("S000005_P0004_T00") for r in caplog.records] == [1]


def _env() -> dict:
    from helpers import REPO

    return dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def test_missing_videos_are_named(fixtures_dir, tmp_path):
    """PHOENIX-2014T with the train frames folder removed: "missing videos 1" and no name."""
    base = tmp_path / "phoenix2014t"
    shutil.copytree(fixtures_dir / "real_formats" / "phoenix2014t", base)
    frames = base / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px"
    gone = next((frames / "train").iterdir())
    shutil.rmtree(gone)
    root = base / "PHOENIX-2014-T"
    rc, out, _ = cli_argv(["data", "check", "--dataset", "phoenix", "--root", root, "--json"])
    report = json.loads(out)
    assert report["splits"]["train"]["missing_videos"] == 1
    assert report["missing_videos"] == [{"id": gone.name, "split": "train", "path": str(gone),
                                         "where": report["missing_videos"][0]["where"]}]
    assert "PHOENIX-2014-T.train.corpus.csv:" in report["missing_videos"][0]["where"]
    for show in ([], ["--show", "20"]):
        rc, out, _ = cli_argv(["data", "check", "--dataset", "phoenix", "--root", root, *show])
        assert f"1 missing videos:\n  train/{gone.name}: {gone} (" in out, out
    # capped like the other lists, with a count
    shutil.rmtree(frames / "dev")
    shutil.rmtree(frames / "test")
    rc, out, _ = cli_argv(["data", "check", "--dataset", "phoenix", "--root", root, "--show", "1"])
    assert "3 missing videos:\n  train/" in out and "  ... and 2 more" in out, out


def test_a_manifest_mixing_languages_must_hold_one(tmp_path):
    """One `de` line among `en` lines: the advice was `set data.lang=de`, which fails on the en lines."""
    corpus = write_toy_corpus(tmp_path / "toy", n_train=4, n_dev=1, n_test=1)
    rows = corpus.read_text().splitlines()
    rows[2] = rows[2].replace('"lang": "en"', '"lang": "de"')
    corpus.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    for argv in (["data", "check", "--dataset", "manifest", "--root", corpus],
                 [*PRETRAIN, "--out", run, f"data.root={corpus}"],
                 [*PRETRAIN, "--out", run, f"data.root={corpus}", "data.lang=de"]):
        rc, _, err = cli_argv(argv)
        assert rc == 2 and err.count("\n") == 1, err
        assert "a manifest must hold one language" in err and "set data.lang" not in err, err
        assert f"'en' 5 (first train/s0, {corpus}:1)" in err and f"'de' 1 (first train/s2, {corpus}:3)" in err, err
    nothing_trained(run)


def test_a_few_texts_in_another_script_are_named(tmp_path, caplog):
    """One Chinese line in an English manifest: not refused (most texts fit), but named."""
    import logging

    corpus = write_toy_corpus(tmp_path / "toy", n_train=4, n_dev=1, n_test=1)
    rows = corpus.read_text().splitlines()
    rec = json.loads(rows[1])
    rec["text"] = "今天天气很好"
    rows[1] = json.dumps(rec, ensure_ascii=False)
    corpus.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rvlf.data"):
        cli_argv(["data", "check", "--dataset", "manifest", "--root", corpus])
    (line,) = [r.getMessage() for r in caplog.records if "unlike the rest" in r.getMessage()]
    assert line.startswith(f"1 of 6 manifest texts under {corpus} are Chinese, unlike the rest") and "train/s1" in line


def test_a_language_the_texts_contradict_is_refused(fixtures_dir, tmp_path):
    """`--lang zh` on the German label file scored German by character without a word; `zh` on an
    English manifest and `en` on CSL-Daily-like Chinese manifests likewise. Training stops the same."""
    labels = fixtures_dir / "real_formats" / "labels.test"
    rc, _, err = cli_argv(["data", "check", "--dataset", "labels", "--root", labels, "--lang", "zh"])
    assert rc == 2 and err.count("\n") == 1 and "hold no Chinese character" in err and "de or en" in err, err
    rc, out, err_json = cli_argv(["data", "check", "--dataset", "labels", "--root", labels, "--lang", "zh", "--json"])
    assert rc == 2 and json.loads(out) == {"error": err_json.strip().split("error: ", 1)[1]}  # --json: still JSON
    rc, out, err = cli_argv(["data", "check", "--dataset", "labels", "--root", labels, "--video-root", tmp_path / "no"])
    assert rc == 2 and f"{tmp_path / 'no'}: --video-root: no such folder" in err
    run = tmp_path / "run"
    rc, _, err2 = cli_argv([*PRETRAIN, "--out", run, "data.dataset=labels", f"data.root={labels}", "data.lang=zh"])
    assert rc == 2 and err2.count("\n") == 1 and "hold no Chinese character" in err2, err2
    nothing_trained(run)
    rc, _, err = cli_argv(["data", "check", "--dataset", "labels", "--root", labels, "--lang", "de"])
    assert "Chinese" not in err, err
    # a manifest whose `lang` its texts contradict, both ways
    corpus = write_toy_corpus(tmp_path / "toy", n_train=4, n_dev=1, n_test=1)
    english = corpus.read_text()
    corpus.write_text(english.replace('"lang": "en"', '"lang": "zh"'))
    rc, _, err = cli_argv(["data", "check", "--dataset", "manifest", "--root", corpus])
    assert rc == 2 and "6 of 6 manifest texts under" in err and "hold no Chinese character" in err, err
    assert f"train/s0, {corpus}:1" in err and "set their `lang` to de or en" in err, err
    chars = [c for row in safe_load(fixtures_dir / "real_formats" / "csl_daily" / "sentence_label" /
                                     "csl2020ct_v2.pkl")["info"] for c in row["label_char"]]
    rows = [json.loads(r) for r in english.splitlines()]
    for r in rows:
        r["text"] = "".join(chars[:6])
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    rc, _, err = cli_argv(["data", "check", "--dataset", "manifest", "--root", corpus])
    assert rc == 2 and "6 of 6 manifest texts under" in err and "are Chinese" in err and "to zh" in err, err


def _lines(path: Path, texts: list[str]) -> str:
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return str(path)


def test_score_and_compare_refuse_a_language_the_references_contradict(fixtures_dir, tmp_path, caplog):
    """`rvlf score/compare --lang zh` on English (or German) references scored them by character:
    now one line, exit 2. `--lang en` on unsegmented Chinese (a sentence = one token): exit 2.
    `--lang en` on word-segmented Chinese can be meant (word-level BLEU): scored, with a warning."""
    from rvlf.data.readers import read_dataset

    german = [s.text for s in read_dataset("labels", fixtures_dir / "real_formats" / "labels.test", lang="de")]
    english = [s.text for s in read_dataset("how2sign", fixtures_dir / "real_formats" / "how2sign")][:4]
    chinese = [s.text for s in read_dataset("csl-daily", fixtures_dir / "real_formats" / "csl_daily")][:4]
    for refs, bad, good in ((german, "zh", "de"), (english, "zh", "en"), (chinese, "en", "zh")):
        ref = _lines(tmp_path / "ref.txt", refs)
        hyp = _lines(tmp_path / "hyp.txt", refs[::-1])
        for argv in (["score", "--hyp", hyp, "--ref", ref], ["compare", "--baseline", hyp, "--system", ref,
                                                             "--ref", ref, "--resamples", "20", "--json"]):
            rc, _, err = cli_argv([*argv, "--lang", bad])
            assert rc == 2 and err.count("\n") == 1 and err.split(": error: ")[1].startswith(f"{ref}: "), err
            assert ("hold no Chinese character" if bad == "zh" else "Chinese without spaces") in err, err
            rc, out, err = cli_argv([*argv, "--lang", good])
            assert rc == 0 and "Chinese" not in err and json.loads(out), err
    segmented = [" ".join(t) for t in chinese]  # word-segmented (here: spaced) Chinese
    ref = _lines(tmp_path / "ref.txt", segmented)
    caplog.clear()
    rc, out, err = cli_argv(["score", "--hyp", ref, "--ref", ref, "--lang", "en"])
    assert rc == 0 and json.loads(out)["bleu4"] == 100.0, err
    assert "word-segmented Chinese" in caplog.text and "--lang zh" in caplog.text

