"""`train.group_by_length`: batches of similar length (transformers' LengthGroupedSampler), the order of
each epoch fixed by seed + epoch (exact resume: tests/test_resume.py runs the demo config, which groups)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from rvlf.data.dataset import SignDataset
from rvlf.data.features import load_video_features
from rvlf.data.readers import read_dataset
from rvlf.errors import ConfigError
from rvlf.train.loop import LengthGroupedEpochSampler, train_lengths


def test_order_is_a_permutation_fixed_by_seed_and_epoch():
    lengths = [int(x) for x in np.random.default_rng(0).integers(10, 300, size=203)]
    a, b = LengthGroupedEpochSampler(8, lengths, seed=3), LengthGroupedEpochSampler(8, lengths, seed=3)
    first = list(a)
    assert sorted(first) == list(range(203)) and first == list(b)
    a.set_epoch(1)
    second = list(a)
    assert sorted(second) == list(range(203)) and second != first
    a.set_epoch(0)
    assert list(a) == first  # a resumed epoch replays its order
    assert list(LengthGroupedEpochSampler(8, lengths, seed=4)) != first


def test_lengths_are_the_feature_files_frames_and_grouped_batches_pad_less(toy_corpus):
    samples = read_dataset("manifest", toy_corpus, ["train"])
    ds = SignDataset(samples, max_frames=20)
    lengths = ds.lengths()
    assert lengths == [min(load_video_features(s.features)["keypoints"].shape[0], 20) for s in samples]
    assert len(set(lengths)) > 1

    def padded(order: list[int]) -> float:  # mean padded length of batches of 4
        return statistics.mean(max(lengths[i] for i in order[k:k + 4]) for k in range(0, len(order), 4))

    grouped = padded(list(LengthGroupedEpochSampler(4, lengths, seed=0)))
    shuffled = statistics.mean(padded(list(np.random.default_rng(s).permutation(len(lengths)))) for s in range(20))
    assert grouped < shuffled


def test_a_dataset_without_lengths_is_a_config_error():
    with pytest.raises(ConfigError, match="group_by_length"):
        train_lengths([1, 2, 3])
