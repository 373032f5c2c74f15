"""`rvlf extract --shard K/N` (job arrays) and `--engine ray` on a local Ray cluster (2 CPUs).

Three short clips cut from the real signer video, in nested folders; the local engine's files are
the reference: Ray must give the same keypoints to the bit and the same DINOv2 features (a tiny
random DINOv2 saved from its config class) within float tolerance, shard by shard, and skip
finished files when rerun.
"""

from __future__ import annotations

import os
import random
import shutil

import cv2
import numpy as np
import pytest

from helpers import cli_output
from rvlf.data.extract import find_jobs
from rvlf.data.features import load_video_features, save_tiny_dinov2
from rvlf.data.shards import resolve_shard, select_shard, shard_of, slurm_shard

CLIPS = ("a/clip0.mp4", "a/b/clip1.mp4", "clip2.mp4")


def _cut(src, dst, first: int, count: int) -> None:
    cap = cv2.VideoCapture(str(src))
    frames = []
    while len(frames) < first + count:
        ok, frame = cap.read()
        assert ok
        frames.append(frame)
    cap.release()
    dst.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for frame in frames[first:]:
        out.write(frame)
    out.release()


def _names(out) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.npz")}


# ---------------------------------------------------------------- --shard: pure functions


def test_shards_are_disjoint_complete_and_independent_of_listing_order(tmp_path):
    root = tmp_path / "videos"
    names = [f"signer{i % 7}/day{i % 3}/take{i}.mp4" for i in range(40)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    jobs = find_jobs([root], tmp_path / "out")
    assert len(jobs) == 40
    parts = [select_shard(jobs, tmp_path / "out", k, 4) for k in range(4)]
    seen = [j.out for part in parts for j in part]
    assert sorted(seen) == sorted(j.out for j in jobs) and len(set(seen)) == 40  # disjoint, union = all
    assert all(parts)  # 40 names over 4 shards: none empty
    shuffled = jobs[:]
    random.Random(0).shuffle(shuffled)
    assert {j.out for j in select_shard(shuffled, tmp_path / "out", 2, 4)} == {j.out for j in parts[2]}
    # by the output name alone, so another --out (another machine's mount) gives the same split
    elsewhere = find_jobs([root], tmp_path / "mnt" / "out")
    assert [j.out.name for j in select_shard(elsewhere, tmp_path / "mnt" / "out", 2, 4)] == \
        [j.out.name for j in parts[2]]
    assert shard_of("signer0/day0/take0.npz", 4) == shard_of("signer0/day0/take0.npz", 4)
    assert shard_of("clip2.npz", 1000) == 689  # pinned: sha1, the same in every Python and on every machine


def test_slurm_array_variables_and_bad_shards():
    env = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "10"}
    assert slurm_shard(env) == (2, 4)
    # --array=1-7:2 -> tasks 1, 3, 5, 7 (Slurm's COUNT is 4): task 5 is shard 2
    assert slurm_shard({**env, "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1",
                        "SLURM_ARRAY_TASK_STEP": "2"}) == (2, 4)
    assert slurm_shard({}) is None
    assert resolve_shard("1/3", env) == (1, 3)  # --shard wins over the array variables
    assert resolve_shard(None, env) == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        rc, out, err = cli_output("extract", "nothing.mp4", "--out", "never", f"--shard={bad}")
        assert rc == 2 and len(err.strip().splitlines()) == 1 and f"--shard {bad}" in err, (bad, err)
    rc, out, err = cli_output("extract", "nothing.mp4", "--out", "never", "--address", "10.0.0.1:6379")
    assert rc == 2 and "--address is for --engine ray" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the engines on real video


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("ray")
    for i, name in enumerate(CLIPS):
        _cut(fixtures_dir / "signer_58frames.mp4", tmp / "videos" / name, first=15 * i, count=10)
    tiny = save_tiny_dinov2(tmp / "tiny-dinov2")
    rc, out, err = cli_output("extract", tmp / "videos", "--out", tmp / "local", "--dino", tiny, "--batch-size", 8)
    assert rc == 0, err
    assert _names(tmp / "local") == {c.replace(".mp4", ".npz") for c in CLIPS}
    return {"tmp": tmp, "tiny": tiny}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray  # the `ray` extra is in `all`: CI runs this test
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report leaves the machine
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_matches_local_shard_by_shard_and_resumes(clips, ray_cluster):
    tmp, tiny = clips["tmp"], clips["tiny"]
    out = tmp / "ray"
    counts = []
    for k in range(2):  # two array tasks, one after the other, into one --out
        rc, stdout, err = cli_output("extract", tmp / "videos", "--out", out, "--dino", tiny, "--batch-size", 8,
                                     "--engine", "ray", "--shard", f"{k}/2")
        assert rc == 0, err
        counts.append(int(stdout.split(f"shard {k}/2: ")[1].split(" of ")[0]))
    assert sum(counts) == 3 and _names(out) == _names(tmp / "local")
    for name in _names(out):
        mine, ref = load_video_features(out / name), load_video_features(tmp / "local" / name)
        np.testing.assert_array_equal(mine["keypoints"], ref["keypoints"])  # the same MediaPipe run, to the bit
        np.testing.assert_allclose(mine["dino"].astype(np.float32), ref["dino"].astype(np.float32), atol=2e-3)
        assert mine["meta"]["dino_fingerprint"] == ref["meta"]["dino_fingerprint"]
        assert mine["meta"]["num_frames"] == 10
    # a rerun (e.g. after a node was lost) skips what is there and redoes what is missing
    (out / "clip2.npz").unlink()
    rc, stdout, err = cli_output("extract", tmp / "videos", "--out", out, "--dino", tiny, "--engine", "ray")
    assert rc == 0, err
    assert "1 done, 2 skipped" in stdout
    np.testing.assert_array_equal(load_video_features(out / "clip2.npz")["keypoints"],
                                  load_video_features(tmp / "local" / "clip2.npz")["keypoints"])


@pytest.mark.slow
def test_ray_engine_keypoints_only_and_a_bad_video_is_one_line(clips, ray_cluster):
    """Not the report's case: --no-features (no actor) and a broken file among good ones."""
    tmp = clips["tmp"]
    videos = tmp / "videos_bad"
    videos.mkdir()
    shutil.copy(tmp / "videos" / "clip2.mp4", videos / "good.mp4")
    (videos / "broken.mp4").write_text("not a video\n")
    rc, stdout, err = cli_output("extract", videos, "--out", tmp / "kp", "--no-features", "--engine", "ray")
    assert rc == 1
    assert "1 done, 0 skipped (already extracted), 1 failed" in stdout
    assert [line for line in err.splitlines() if "broken.mp4" in line and "failed" in line]
    assert load_video_features(tmp / "kp" / "good.npz").get("dino") is None
    np.testing.assert_array_equal(load_video_features(tmp / "kp" / "good.npz")["keypoints"],
                                  load_video_features(tmp / "local" / "clip2.npz")["keypoints"])
