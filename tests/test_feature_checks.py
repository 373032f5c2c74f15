"""The feature set is checked before step 1: every problem in one message naming the files (exit 2),
nothing trained; or `data.skip_bad_samples=true` leaves the bad samples out and says how many.
Also: where training finds features `rvlf extract` wrote from a release's folder tree, and header-only
reads agreeing with full reads."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import CHEAP, PRETRAIN, REPO, cli_argv, nothing_trained, write_toy_corpus
from rvlf.data.checks import FeatureSetError, check_feature_set, feature_candidates, find_feature_file
from rvlf.data.features import load_video_features, read_feature_header, save_video_features
from rvlf.data.readers import read_dataset, read_manifest
from rvlf.errors import InputFileError, RvlfError

@pytest.fixture
def corpus(tmp_path) -> Path:
    """A 8/2/2 toy manifest corpus: features/s0..s7 train, s8-s9 dev, s10-s11 test, DINOv2 width 16."""
    return write_toy_corpus(tmp_path / "toy", n_train=8, n_dev=2, n_test=2)


def _feat(corpus: Path, i: int) -> Path:
    return corpus.parent / "features" / f"s{i}.npz"


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rewrite(path: Path, frames: int | None = None, dino_dim: int | None = 16, points: int = 77) -> None:
    old = load_video_features(path)
    t = old["keypoints"].shape[0] if frames is None else frames
    kp = np.zeros((t, points, 3), np.float32)
    arrays = {"keypoints": kp, "meta": np.array(json.dumps(old["meta"]))}
    if dino_dim:
        arrays["dino"] = np.zeros((t, 3, dino_dim), np.float16)
    np.savez(path, **arrays)


BREAK = {
    "missing": (lambda p: p.unlink(), "feature file not found"),
    "cut": (_cut, "not a readable .npz: cut short or not a zip file"),
    "empty": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "not-a-zip": (lambda p: p.write_text("keypoints"), "not a readable .npz"),
    "no-frames": (lambda p: _rewrite(p, frames=0), "no frames (keypoints [0, 77, 3])"),
    "wrong-points": (lambda p: _rewrite(p, points=76), "keypoints must be float [T,77,3], got float32 [5, 76, 3]"),
    "no-dino": (lambda p: _rewrite(p, dino_dim=None), "no DINOv2 features, while the 11 other files have them"),
    "dino-width": (lambda p: _rewrite(p, dino_dim=8), "DINOv2 width 8, the other 11 files have 16"),
}


@pytest.mark.parametrize("case", list(BREAK))
@pytest.mark.parametrize("which", [3, 10], ids=["train-file", "test-file"])
def test_pretrain_stops_before_step_1_naming_the_file(corpus, tmp_path, case, which):
    path = _feat(corpus, which)
    if case == "wrong-points":
        _rewrite(path, frames=5)   # a known T for the message
    BREAK[case][0](path)
    out = tmp_path / "run"
    rc, _, err = cli_argv([*PRETRAIN, "--out", out, f"data.root={corpus}"])
    assert rc == 2, err
    split = "train" if which == 3 else "test"
    assert err.startswith(f"rvlf pretrain: error: {split}/s{which}: {path}: {BREAK[case][1]}"), err
    assert err.count("\n") == 1 and "nothing was run" in err and "data.skip_bad_samples=true" in err
    nothing_trained(out)


def test_every_problem_in_one_message(corpus, tmp_path):
    _feat(corpus, 1).unlink()
    _cut(_feat(corpus, 8))
    _rewrite(_feat(corpus, 11), dino_dim=8)
    out = tmp_path / "run"
    rc, _, err = cli_argv([*PRETRAIN, "--out", out, f"data.root={corpus}"])
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines[0] == ("rvlf pretrain: error: 3 of 12 samples cannot be used (1 another DINOv2 width, 1 missing, "
                        "1 unreadable or malformed); checked before training, nothing was run. Fix or re-extract "
                        "them, or set data.skip_bad_samples=true to leave them out:")
    assert [ln.split(":")[0].strip() for ln in lines[1:]] == ["train/s1", "dev/s8", "test/s11"]
    nothing_trained(out)


def test_sft_stops_before_step_1(corpus, tmp_path):
    _rewrite(_feat(corpus, 5), dino_dim=None)
    out = tmp_path / "sft"
    rc, _, err = cli_argv(["sft", "--config", REPO / "configs/demo/sft.yaml", "--no-pretrain", "--out", out,
                       "--max-steps", "1", f"data.root={corpus}", *CHEAP])
    assert rc == 2 and err.startswith(f"rvlf sft: error: train/s5: {_feat(corpus, 5)}: no DINOv2 features")
    nothing_trained(out)


def test_skip_bad_samples_trains_without_them_and_says_how_many(corpus, tmp_path, caplog):
    _feat(corpus, 2).unlink()
    _cut(_feat(corpus, 9))
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="rvlf.data"):
        rc, stdout, err = cli_argv([*PRETRAIN, "--out", out, f"data.root={corpus}", "data.skip_bad_samples=true"])
    assert rc == 0, err
    [message] = [r.getMessage() for r in caplog.records if "skip_bad_samples" in r.getMessage()]
    assert message.startswith("data.skip_bad_samples=true: left out 2 of 12 samples (dev 1, train 1)")
    assert (out / "metrics.jsonl").exists() and json.loads(stdout)["steps"] == 1
    ids = [line.split("\t")[0] for line in (out / "test_translations.tsv").read_text().splitlines()]
    assert ids == ["s10", "s11"]


def test_empty_text_is_refused_before_step_1(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", n_train=8, n_dev=2, n_test=2)
    lines = manifest.read_text().splitlines()
    rec = json.loads(lines[4])
    rec["text"] = "   "
    lines[4] = json.dumps(rec)
    manifest.write_text("\n".join(lines) + "\n")
    rc, _, err = cli_argv([*PRETRAIN, "--out", tmp_path / "run", f"data.root={manifest}"])
    assert rc == 2 and err.startswith(f"rvlf pretrain: error: train/s4: {manifest}:5: empty text (checked before")
    nothing_trained(tmp_path / "run")


def test_check_reads_headers_only_and_agrees_with_full_reads(corpus, monkeypatch):
    by_split: dict = {}
    for s in read_manifest(corpus):
        by_split.setdefault(s.split, []).append(s)
    full = {s.id: load_video_features(s.features) for ss in by_split.values() for s in ss}

    def no_decoding(*a, **k):
        raise AssertionError("an array was decoded")

    monkeypatch.setattr(np.lib.format, "read_array", no_decoding)
    monkeypatch.setattr(np, "load", no_decoding)
    report = check_feature_set(by_split, None)
    assert report.problems == [] and report.checked == 12 and report.dino_dim == 16
    for (_, sid), h in report.headers.items():
        assert h.frames == full[sid]["keypoints"].shape[0] and h.dino_dim == full[sid]["dino"].shape[2]


def test_header_catches_a_file_cut_inside_an_array(tmp_path):
    """A zip whose directory is intact but whose `keypoints` member is shorter than its header says."""
    good = save_video_features(tmp_path / "good.npz", np.ones((6, 77, 3)), None, {})
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:-77 * 3 * 4] if info.filename == "keypoints.npy" else data)
    assert read_feature_header(good).frames == 6
    with zipfile.ZipFile(good) as z:
        size = z.getinfo("keypoints.npy").file_size
    with pytest.raises(InputFileError, match=f"'keypoints.npy' holds {size - 924} bytes, its header says {size}"):
        read_feature_header(bad)
    with pytest.raises(InputFileError):
        load_video_features(bad)


def test_features_extracted_from_the_phoenix_frame_tree_are_found(fixtures_dir, tmp_path):
    """`rvlf extract .../fullFrame-210x260px --out F` names outputs F/SPLIT/NAME.npz (extract's own
    naming, `find_jobs`); training and data check find them there without moving files."""
    from rvlf.data.extract import find_jobs

    base = fixtures_dir / "real_formats" / "phoenix2014t" / "PHOENIX-2014-T"
    feats = tmp_path / "F"
    jobs = find_jobs([base / "features" / "fullFrame-210x260px"], feats)
    assert sorted(str(j.out.relative_to(feats)) for j in jobs) == [
        "dev/03June_2011_Friday_tagesschau-2.npz", "test/27January_2013_Sunday_tagesschau-3.npz",
        "train/11August_2010_Wednesday_tagesschau-1.npz"]
    rng = np.random.default_rng(0)
    for job in jobs:  # what extraction writes there: 4 frames each, no DINOv2 (--no-features)
        save_video_features(job.out, rng.uniform(0, 200, (4, 77, 3)).astype(np.float32), None, {})
    samples = read_dataset("phoenix2014t", base)
    assert [find_feature_file(s, feats) for s in samples] == [feats / s.split / f"{s.id}.npz" for s in samples]
    assert feature_candidates(samples[0], feats)[-2:] == [feats / "train" / f"{samples[0].id}.npz",
                                                          feats / f"{samples[0].id}.npz"]
    rc, out, err = cli_argv(["data", "check", "--dataset", "phoenix", "--root", base, "--features", feats, "--json"])
    report = json.loads(out)
    assert rc == 0, err
    assert report["missing_features"] == [] and report["mismatches"] == []
    assert report["splits"]["train"]["feature_frames"]["max"] == 4
    run = tmp_path / "run"
    rc, out, err = cli_argv([*PRETRAIN, "--out", run, f"data.root={base}", "data.dataset=phoenix", "data.lang=de",
                         f"data.features_dir={feats}", "train.batch_size=1"])
    assert rc == 0, err
    assert (run / "metrics.jsonl").exists() and json.loads(out)["steps"] == 1
    assert (run / "test_translations.tsv").read_text().startswith("27January_2013_Sunday_tagesschau-3\t")


def test_load_samples_raises_feature_set_error(corpus):
    from rvlf.config import DataConfig
    from rvlf.train.common import load_samples

    _feat(corpus, 0).unlink()
    with pytest.raises(FeatureSetError) as err:
        load_samples(DataConfig(dataset="manifest", root=str(corpus)))
    assert err.value.exit_code == 2 and [p.id for p in err.value.report.problems] == ["s0"]
    # a caller using only the dev split is not stopped by a train file
    assert [s.id for s in load_samples(DataConfig(dataset="manifest", root=str(corpus)), ["dev"])["dev"]] == ["s8", "s9"]
    with pytest.raises(Exception, match="data.lang is empty"):
        load_samples(DataConfig(dataset="labels", root=str(corpus)))


def test_unreadable_file_one_line_exit_2_in_every_command(corpus, tmp_path):
    run = tmp_path / "run"
    rc, _, err = cli_argv([*PRETRAIN, "--out", run, f"data.root={corpus}"])
    assert rc == 0, err
    for name, damage in (("cut", _cut), ("empty", lambda p: p.write_bytes(b""))):
        path = _feat(corpus, 10)
        path.write_bytes(_feat(corpus, 11).read_bytes())
        damage(path)
        rc, _, err = cli_argv(["evaluate", "--checkpoint", run / "last", "--split", "test", f"data.root={corpus}"])
        assert rc == 2 and err.startswith(f"rvlf evaluate: error: test/s10: {path}: ") and err.count("\n") == 1, err
        rc, _, err = cli_argv(["translate", path, "--checkpoint", run / "last"])
        assert rc == 2 and err.startswith(f"rvlf translate: error: {path}: ") and err.count("\n") == 1, err
        rc, out, err = cli_argv(["data", "check", "--dataset", "manifest", "--root", corpus])
        assert rc == 2 and f"1 unreadable feature files:\n  test/s10: {path}: " in out, (out, err)
        rc, out, err = cli_argv([*PRETRAIN, "--out", tmp_path / name, f"data.root={corpus}"])
        assert rc == 2 and err.startswith(f"rvlf pretrain: error: test/s10: {path}: "), err
        nothing_trained(tmp_path / name)
    # evaluate on dev is not stopped by a test file
    rc, out, err = cli_argv(["evaluate", "--checkpoint", run / "last", "--split", "dev", f"data.root={corpus}"])
    assert rc == 0 and json.loads(out)["samples"] == 2, err


def test_openasl_features_extracted_from_the_release_clips_are_found(fixtures_dir, tmp_path):
    """crop_video.py names clips VID.mp4 with `:` as `%`; `rvlf extract CLIPS --out F` keeps that name."""
    from rvlf.data.extract import find_jobs

    clips = tmp_path / "video-clip"
    clips.mkdir()
    samples = read_dataset("openasl", fixtures_dir / "real_formats" / "openasl", video_root=clips)
    for s in samples:
        s.video.write_bytes(b"")   # stand-ins: only the names matter to find_jobs
    feats = tmp_path / "F"
    for job in find_jobs([clips], feats):
        save_video_features(job.out, np.zeros((3, 77, 3)), None, {})
    found = [find_feature_file(s, feats) for s in samples]
    assert [p.name for p in found] == ["q1w2e3r4t5y-00%00%01.200-00%00%03.900.npz", "q1w2e3r4t5y-00%00%04.000-00%00%06.500.npz",
                                       "u7i8o9p0a1s-00%01%10.000-00%01%13.250.npz", "u7i8o9p0a1s-00%01%14.000-00%01%16.000.npz"]
    assert all(p.is_file() for p in found)


def test_header_reads_compressed_big_endian_and_other_header_spellings(tmp_path):
    kp = np.ones((7, 77, 3), ">f4")
    np.savez_compressed(tmp_path / "c.npz", keypoints=kp, dino=np.zeros((7, 3, 5), np.float32), meta=np.array("{}"))
    assert read_feature_header(tmp_path / "c.npz").frames == 7 and read_feature_header(tmp_path / "c.npz").dino_dim == 5
    np.savez(tmp_path / "f.npz", keypoints=np.asfortranarray(np.ones((4, 77, 3), np.float64)), meta=np.array("{}"))
    assert read_feature_header(tmp_path / "f.npz").frames == 4
    # a header with the keys in another order (another writer): parsed by the general path, as NumPy does
    body = np.ones((3, 77, 3), "<f4").tobytes()
    header = "{'shape': (3, 77, 3), 'descr': '<f4', 'fortran_order': False}"
    header = header + " " * (118 - len(header)) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + body
    with zipfile.ZipFile(tmp_path / "o.npz", "w") as z:
        z.writestr("keypoints.npy", npy)
        z.writestr("meta.npy", _npy_bytes(np.array("{}")))
    assert read_feature_header(tmp_path / "o.npz").frames == 3
    assert load_video_features(tmp_path / "o.npz")["keypoints"].shape == (3, 77, 3)
    np.savez(tmp_path / "i.npz", keypoints=np.ones((3, 77, 3), np.int32), meta=np.array("{}"))
    with pytest.raises(InputFileError, match=r"keypoints must be float \[T,77,3\], got int32 \[3, 77, 3\]"):
        read_feature_header(tmp_path / "i.npz")


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("extract_from", ["How2Sign", "How2Sign/sentence_level", "raw_videos of each split"])
def test_how2sign_official_layout_features_are_found_wherever_extracted_from(fixtures_dir, tmp_path, extract_from):
    from rvlf.data.extract import find_jobs

    base = tmp_path / "How2Sign"
    for tag in ("train", "val", "test"):
        text = base / "sentence_level" / tag / "text" / "en" / "raw_text" / "re_aligned"
        text.mkdir(parents=True)
        (text / f"how2sign_realigned_{tag}.csv").write_bytes(
            (fixtures_dir / "real_formats" / "how2sign" / f"how2sign_realigned_{tag}.csv").read_bytes())
        (base / "sentence_level" / tag / "rgb_front" / "raw_videos").mkdir(parents=True)
    samples = read_dataset("how2sign", base)
    for s in samples:
        s.video.write_bytes(b"")   # stand-ins: only the names matter to find_jobs
    feats = tmp_path / "F"
    if extract_from == "raw_videos of each split":
        # all into one folder: this fixture names train and test clips alike, which extract refuses
        splits = [base / "sentence_level" / tag / "rgb_front" / "raw_videos" for tag in ("train", "val", "test")]
        with pytest.raises(RvlfError, match="would both be written to"):
            find_jobs(splits, feats)
        inputs = splits[:2]
        samples = [s for s in samples if s.split != "test"]
    else:
        inputs = [tmp_path / extract_from]
    jobs = find_jobs(inputs, feats)
    for job in jobs:
        save_video_features(job.out, np.zeros((3, 77, 3)), None, {})
    found = {find_feature_file(s, feats) for s in samples}
    assert found == {job.out for job in jobs} and all(p.is_file() for p in found)
    assert check_feature_set({"all": samples}, feats).problems == []


@pytest.mark.parametrize("arrays", [
    {"keypoints": np.zeros((10, 77), np.float32)},                          # keypoints only, wrong shape
    {"keypoints": np.zeros((10, 77), np.float32), "meta": np.array("{}")},   # with a meta that says nothing
    {"keypoints": np.zeros((4, 77, 3), np.float32),                          # meta fields of the wrong type
     "meta": np.array(json.dumps({"num_frames": None, "detection_rates": {"body": None}}))},
])
def test_data_check_names_a_malformed_feature_file_on_the_phoenix_layout(fixtures_dir, tmp_path, arrays):
    """A feature file with wrongly shaped keypoints (or a meta of the wrong types) is listed by
    `rvlf data check` as unreadable, naming it: not "internal error: IndexError"."""
    from rvlf.data.extract import find_jobs

    base = fixtures_dir / "real_formats" / "phoenix2014t" / "PHOENIX-2014-T"
    feats = tmp_path / "F"
    for job in find_jobs([base / "features" / "fullFrame-210x260px"], feats):
        save_video_features(job.out, np.full((4, 77, 3), 50, np.float32), None, {"width": 210, "height": 260})
    bad = feats / "test" / "27January_2013_Sunday_tagesschau-3.npz"
    np.savez(bad, **arrays)
    rc, out, err = cli_argv(["data", "check", "--dataset", "phoenix", "--root", base, "--features", feats])
    assert "internal error" not in err and "Traceback" not in err, err
    if arrays["keypoints"].ndim == 2:  # training could not read it: listed, naming the file
        assert rc == 2 and f"test/27January_2013_Sunday_tagesschau-3: {bad}: " in out, (out, err)


@pytest.mark.parametrize("dataset, root, lang", [
    ("csl-daily", "csl_daily", "zh"),
    ("phoenix", "phoenix2014t/PHOENIX-2014-T", "de"),
])
def test_a_config_in_another_language_than_the_dataset_stops_before_step_1(fixtures_dir, tmp_path, dataset, root,
                                                                            lang):
    """The demo configs say `lang: en`; pointed at CSL-Daily they would tokenise and score Chinese by
    words and label the model English. The run stops naming the language to set."""
    run = tmp_path / "run"
    rc, _, err = cli_argv([*PRETRAIN, "--out", run, f"data.dataset={dataset}",
                       f"data.root={fixtures_dir / 'real_formats' / root}", f"data.features_dir={tmp_path}"])
    assert rc == 2 and err.count("\n") == 1 and "data.lang is 'en'" in err and f"set data.lang={lang}" in err, err
    nothing_trained(run)
    # with the dataset's language the check passes (and the missing features are what stops it)
    rc, _, err = cli_argv([*PRETRAIN, "--out", run, f"data.dataset={dataset}", "data.lang=",
                       f"data.root={fixtures_dir / 'real_formats' / root}", f"data.features_dir={tmp_path}"])
    assert rc == 2 and "data.lang" not in err and "feature file not found" in err, err


def test_a_language_the_protocol_does_not_know_stops_before_step_1(corpus, tmp_path):
    """`data.lang=fr` trained a step and then failed at the first evaluation ("unknown language")."""
    manifest = corpus.read_text(encoding="utf-8").replace('"lang": "en"', '"lang": "fr"')
    corpus.write_text(manifest, encoding="utf-8")
    run = tmp_path / "run"
    rc, _, err = cli_argv([*PRETRAIN, "--out", run, f"data.root={corpus}", "data.lang=fr"])
    assert rc == 2 and err.startswith("rvlf pretrain: error: data.lang 'fr': ") and err.count("\n") == 1, err
    nothing_trained(run)
