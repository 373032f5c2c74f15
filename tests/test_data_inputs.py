"""Long inputs (`data.long_inputs`) in training, evaluation and translation, and what `rvlf data check`
and training report about real inputs: frame counts by decoding, samples without a signer, long samples."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from rvlf.cli import main
from rvlf.config import DataConfig
from rvlf.data.dataset import SignDataset, collate, select_frames
from rvlf.data.features import save_video_features
from rvlf.data.keypoints import normalize_keypoints
from rvlf.data.poses import read_keypoints
from rvlf.data.readers import SignSample
from rvlf.errors import ConfigError


def _long_features(path, fixtures_dir, frames: int = 900, body: bool = True):
    """A feature file of `frames` real Holistic frames (the 97-frame file looped); dino[t, :, 0] = t."""
    kp = read_keypoints(fixtures_dir / "holistic_97frames.pose")
    kp = np.concatenate([kp] * (frames // len(kp) + 1))[:frames]
    if not body:
        kp = np.zeros_like(kp)
    dino = np.zeros((frames, 3, 8), np.float32)
    dino[:, :, 0] = np.arange(frames)[:, None]                       # exact in float16 below 2048
    return save_video_features(path, kp, dino, {"source": "test", "width": 320, "height": 240}), kp


def test_select_frames_policies():
    assert np.array_equal(select_frames(900, 300, "truncate"), np.arange(300))
    sub = select_frames(900, 300, "subsample")
    assert len(sub) == 300 and sub[0] == 0 and sub[-1] == 899 and (np.diff(sub) >= 2).all()
    assert np.array_equal(select_frames(301, 300, "subsample"), np.rint(np.linspace(0, 300, 300)))
    for policy in ("truncate", "subsample"):
        assert np.array_equal(select_frames(120, 300, policy), np.arange(120))   # short inputs keep every frame
    with pytest.raises(ConfigError, match="data.long_inputs must be one of truncate, subsample, got 'random'"):
        select_frames(900, 300, "random")


@pytest.mark.parametrize("policy", ["truncate", "subsample"])
def test_900_frames_same_frames_in_training_and_translate(tmp_path, fixtures_dir, policy):
    """The dataset (training, `rvlf evaluate`) and `rvlf.inference.pipeline.decode` keep the same 300 frames."""
    from rvlf.inference.pipeline import Prepared, decode

    path, kp = _long_features(tmp_path / "long.npz", fixtures_dir)
    sample = SignSample(id="long", split="train", text="a b", lang="en", features=path)
    item = SignDataset([sample], max_frames=300, long_inputs=policy)[0]
    keep = select_frames(900, 300, policy)
    assert item["keypoints"].shape == (300, 77, 3)
    np.testing.assert_array_equal(item["dino"][:, 0, 0].astype(np.int64), keep)
    np.testing.assert_allclose(item["keypoints"], normalize_keypoints(kp[keep]))
    if policy == "subsample":
        assert item["dino"][-1, 0, 0] == 899                            # the end of the signing is seen

    class Stage:  # records the batch the model would decode
        class cfg:
            class fusion:
                use_face, use_hand, dino_dim = True, True, 8

        def decode(self, batch, num_beams, max_new_tokens):
            self.batch = batch
            return ["x"]

    stage = Stage()
    dino = np.zeros((900, 3, 8), np.float32)
    dino[:, :, 0] = np.arange(900)[:, None]
    decode(stage, [Prepared("long", kp, dino, path)], max_frames=300, long_inputs=policy)
    ref = collate([{"id": "long", "text": "", **item}])
    np.testing.assert_allclose(stage.batch["keypoints"].numpy(), ref["keypoints"].numpy())
    np.testing.assert_array_equal(stage.batch["dino"].numpy(), ref["dino"].numpy())


def test_training_reports_samples_without_signer_and_long_ones(tmp_path, fixtures_dir, caplog):
    from rvlf.train.common import split_dataset

    feats = tmp_path / "feats"
    _long_features(feats / "long.npz", fixtures_dir, 900)
    _long_features(feats / "ok.npz", fixtures_dir, 97)
    _long_features(feats / "nobody.npz", fixtures_dir, 50, body=False)
    samples = [SignSample(id=i, split="train", text="a", lang="en") for i in ("long", "ok", "nobody")]
    data = DataConfig(features_dir=str(feats), long_inputs="subsample")
    with caplog.at_level(logging.INFO, logger="rvlf.data"):
        ds = split_dataset(data, {"train": samples}, "train")
    assert ds.long_inputs == "subsample" and len(ds[0]["keypoints"]) == 300
    text = caplog.text
    assert "train: 3 samples; 1 without a signer (body found in no frame); 1 longer than 300 frames (subsample)" in text
    assert "without a signer (body found in no frame): nobody" in text
    with pytest.raises(ConfigError, match="data.long_inputs"):
        split_dataset(DataConfig(features_dir=str(feats), long_inputs="cut"), {"train": samples}, "train")


def test_data_check_counts_frames_by_decoding_and_lists_empty_and_long(tmp_path, fixtures_dir, capsys):
    from media_helpers import cut_with_edit_list
    from pose_format import Pose

    real = fixtures_dir / "real_formats"
    cut = cut_with_edit_list(fixtures_dir / "signer_58frames.mp4", tmp_path / "cut.mp4", skip=13)
    feats = tmp_path / "feats"
    _long_features(feats / "webm.npz", fixtures_dir, 58)
    _long_features(feats / "mac.npz", fixtures_dir, 6)
    _long_features(feats / "cut.npz", fixtures_dir, 45)
    _long_features(feats / "empty.npz", fixtures_dir, 58, body=False)
    _long_features(feats / "long.npz", fixtures_dir, 900)
    pose = Pose.read((fixtures_dir / "holistic_97frames.pose").read_bytes())
    pose.body.data.mask = np.ones(pose.body.data.shape, dtype=bool)
    pose.body.confidence[:] = 0
    with (tmp_path / "masked.pose").open("wb") as f:
        pose.write(f)
    rows = [
        {"id": "webm", "video": str(real / "signer_58frames.webm"), "features": "feats/webm.npz"},
        {"id": "mac", "video": str(real / "frames_macos_copy"), "features": "feats/mac.npz"},
        {"id": "cut", "video": str(cut), "features": "feats/cut.npz"},
        {"id": "empty", "video": str(real / "signer_58frames.webm"), "features": "feats/empty.npz"},
        {"id": "long", "features": "feats/long.npz"},
        {"id": "unisign", "video": str(real / "frames_macos_copy"), "keypoints": str(real / "unisign_pose_lists.pkl")},
        {"id": "masked", "keypoints": "masked.pose"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"split": "train", "text": "a b", "lang": "en", **r}) + "\n" for r in rows))
    rc = main(["data", "check", "--dataset", "manifest", "--root", str(manifest), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == []
    # keypoints without `features`: training refuses these lines before step 1, and so does the check
    assert report["training_problems"] == [
        f"train/{i}: {manifest}:{n}: no feature file: set data.features_dir or give `features` in the manifest"
        for i, n in (("unisign", 6), ("masked", 7))]
    assert [x["id"] for x in report["missing_features"]] == ["unisign", "masked"]
    train = report["splits"]["train"]
    assert train["video_frames"] == {"n": 5, "min": 6, "mean": 34.6, "median": 45, "max": 58}  # 58, 6, 45, 58, 6
    assert sorted(x["id"] for x in report["low_body"]) == ["empty", "masked"]
    assert report["long_inputs"] == {"max_frames": 300, "samples": {"train": 1}}
    assert rc == 1                                                    # samples without a signer are problems
    rc = main(["data", "check", "--dataset", "manifest", "--root", str(manifest)])
    out = capsys.readouterr().out
    assert "2 samples whose body is found in fewer than 50% of their frames" in out
    assert "train/empty: body in 0% of 58 frames" in out and "train/masked: body in 0% of 97 frames" in out
    assert "1 samples longer than 300 frames (cut by data.long_inputs): train 1" in out
    assert "2 missing feature files:\n  train/unisign: " in out
    rc = main(["data", "check", "--dataset", "manifest", "--root", str(manifest), "--min-body-share", "0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["low_body"] == [] and rc == 1                       # still: two lines without features
    # a 45-frame video next to 58-frame features is still a mismatch: the count is what plays
    manifest.write_text(json.dumps({"id": "x", "split": "train", "text": "a", "lang": "en", "video": str(cut),
                                    "features": "feats/webm.npz"}) + "\n")
    assert main(["data", "check", "--dataset", "manifest", "--root", str(manifest), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["mismatches"] == [
        {"id": "x", "split": "train", "video_frames": 45, "feature_frames": 58}]


def test_data_check_phoenix_frame_folder_copied_from_a_mac(tmp_path, fixtures_dir, capsys):
    """A PHOENIX-2014T frame folder with AppleDouble companions counts its 6 frames."""
    src = fixtures_dir / "real_formats" / "phoenix2014t" / "PHOENIX-2014-T" / "annotations" / "manual"
    root = tmp_path / "PHOENIX-2014-T"
    (root / "annotations" / "manual").mkdir(parents=True)
    for f in src.iterdir():
        shutil.copyfile(f, root / "annotations" / "manual" / f.name)
    from rvlf.data.readers import read_dataset

    sample = read_dataset("phoenix2014t", root, ["dev"])[0]
    sample.video.mkdir(parents=True)
    mac = fixtures_dir / "real_formats" / "frames_macos_copy"
    for f in mac.iterdir():                                          # 6 JPEGs, 6 `._*.jpg`, a .DS_Store
        shutil.copyfile(f, sample.video / f.name)
    rc = main(["data", "check", "--dataset", "phoenix2014t", "--root", str(root), "--splits", "dev", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["splits"]["dev"]["video_frames"] == {"n": 1, "min": 6, "mean": 6.0, "median": 6,
                                                                   "max": 6}
