"""Symbolic links (C14): datasets on shared storage are assembled from links. Every command that
walks a tree follows them (`rvlf.data.walk`), names a broken link and does not hang on a loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import cli_output
from rvlf.data.features import save_video_features
from rvlf.data.readers import read_dataset
from rvlf.data.walk import dangling_link, files_under, walk
from rvlf.errors import InputFileError


def _feature(path: Path, frames: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    kp = np.concatenate([rng.uniform(50, 200, (frames, 77, 2)), np.ones((frames, 77, 1))], -1)
    return save_video_features(path, kp.astype(np.float32), None, {"num_frames": frames})


def test_analyze_follows_a_linked_split_folder(tmp_path):
    """C14: `feats/dev/*.npz` plus `feats/test -> ../real/test` (2 files): all 4 are analysed;
    `feats2/` holding only the link works too (it was "no .npz feature files")."""
    for i, rel in enumerate(("feats/dev/a.npz", "feats/dev/b.npz", "real/test/c.npz", "real/test/d.npz")):
        _feature(tmp_path / rel, seed=i)
    (tmp_path / "feats" / "test").symlink_to("../real/test", target_is_directory=True)
    (tmp_path / "feats2").mkdir()
    (tmp_path / "feats2" / "test").symlink_to("../real/test", target_is_directory=True)
    rc, out, err = cli_output("analyze", "similarity", tmp_path / "feats", "--out", tmp_path / "sim.png")
    assert rc == 0, err
    assert "body   (keypoints): " in out and "20 pairs" in out          # 4 videos x 5 adjacent pairs
    rc, out, err = cli_output("analyze", "similarity", tmp_path / "feats2", "--out", tmp_path / "sim2.png")
    assert rc == 0 and "10 pairs" in out, err


def test_analyze_names_a_broken_link_and_survives_a_loop(tmp_path):
    """Variant: a split folder linked to storage that is gone, and a link back to the root."""
    _feature(tmp_path / "feats" / "dev" / "a.npz")
    (tmp_path / "feats" / "test").symlink_to("../unmounted/test", target_is_directory=True)
    (tmp_path / "feats" / "dev" / "up").symlink_to("..", target_is_directory=True)
    rc, out, err = cli_output("analyze", "similarity", tmp_path / "feats", "--out", tmp_path / "s.png")
    lines = err.strip().splitlines()
    assert rc == 1 and "5 pairs" in out
    assert lines == [f"rvlf analyze: skipped: {tmp_path / 'feats/test'}: broken symbolic link (-> ../unmounted/test)",
                     f"rvlf analyze: note: {tmp_path / 'feats/dev/up'}: symbolic link loop (-> .., which is already "
                     f"{tmp_path / 'feats'}); not entered again"]


def test_walk_self_link_and_files_under(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.NPZ").write_bytes(b"")
    (tmp_path / "self").symlink_to("self")             # a link to itself: ELOOP, not a hang
    (tmp_path / "b").symlink_to("a", target_is_directory=True)
    problems = []
    assert files_under(tmp_path, ".npz", problems) == [tmp_path / "a" / "x.NPZ", tmp_path / "b" / "x.NPZ"]
    assert [(p.path.name, p.kind) for p in problems] == [("self", "loop")]
    assert [f for f, _, _ in walk(tmp_path / "self", problems)] == [] and problems[-1].kind == "broken"


def test_data_check_names_a_broken_feature_link(tmp_path, capsys):
    """`rvlf data check --features` follows linked feature files (as training does, `find_feature_file`);
    a linked folder whose target is gone is named as such, not "file not found"."""
    lines = [{"id": "a", "split": "dev", "text": "x y", "lang": "en"},
             {"id": "b", "split": "test", "text": "y z", "lang": "en"}]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    _feature(tmp_path / "store" / "dev" / "a.npz")
    _feature(tmp_path / "store" / "test" / "b.npz")
    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / "a.npz").symlink_to("../store/dev/a.npz")
    (feats / "b.npz").symlink_to("../store/test/b.npz")
    argv = ["data", "check", "--dataset", "manifest", "--root", manifest, "--features", feats]
    rc, out, err = cli_output(*argv)
    assert rc == 0, out + err
    (tmp_path / "store" / "test" / "b.npz").unlink()
    rc, out, err = cli_output(*argv)
    assert rc == 1 and f"test/b: {feats / 'b.npz'}: broken symbolic link {feats / 'b.npz'} " \
                       f"(-> ../store/test/b.npz)" in out + err


def test_reader_root_behind_a_broken_link_is_named(tmp_path):
    (tmp_path / "ds").symlink_to("/nonexistent/mount/ds", target_is_directory=True)
    with pytest.raises(InputFileError, match=r"dataset root not found \(broken symbolic link .*ds "
                                             r"\(-> /nonexistent/mount/ds\)\)"):
        read_dataset("openasl", tmp_path / "ds")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "openasl-v1.0.tsv").symlink_to("../gone.tsv")
    with pytest.raises(InputFileError, match=r"openasl-v1.0.tsv: broken symbolic link"):
        read_dataset("openasl", tmp_path / "real")
    assert dangling_link(tmp_path / "ds" / "deeper" / "file.tsv").startswith(f"broken symbolic link {tmp_path / 'ds'}")


def test_data_check_names_a_video_behind_a_broken_link(fixtures_dir, tmp_path):
    """PHOENIX-2014T whose train frames folder is a link to storage that is gone."""
    import shutil

    base = tmp_path / "phoenix2014t"
    shutil.copytree(fixtures_dir / "real_formats" / "phoenix2014t", base)
    frames = base / "PHOENIX-2014-T" / "features" / "fullFrame-210x260px"
    shutil.rmtree(frames / "train")
    (frames / "train").symlink_to("/nonexistent/train", target_is_directory=True)
    rc, out, err = cli_output("data", "check", "--dataset", "phoenix", "--root", base / "PHOENIX-2014-T")
    assert f"broken symbolic link {frames / 'train'} (-> /nonexistent/train)" in out, out + err


def test_a_video_given_through_a_broken_link_is_named(tmp_path):
    from rvlf.data.video import iter_frames

    (tmp_path / "c.mp4").symlink_to("/nonexistent/store/c.mp4")
    with pytest.raises(InputFileError, match=r"c.mp4: broken symbolic link .*c.mp4 \(-> /nonexistent/store/c.mp4\)"):
        next(iter_frames(tmp_path / "c.mp4"))
