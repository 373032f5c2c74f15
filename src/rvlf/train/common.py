"""Pieces every stage recipe uses: loading the splits, the run folder, the results file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rvlf.config import DataConfig
from rvlf.data.dataset import SignDataset
from rvlf.data.readers import SignSample, read_dataset
from rvlf.errors import ConfigError


def load_samples(data: DataConfig) -> dict[str, list[SignSample]]:
    """All samples of the configured dataset, by split name."""
    if not data.root:
        raise ConfigError("data.root is empty: set it in the config or as data.root=PATH")
    samples = read_dataset(data.dataset, data.root)
    by_split: dict[str, list[SignSample]] = {}
    for s in samples:
        by_split.setdefault(s.split, []).append(s)
    return by_split


def split_dataset(data: DataConfig, by_split: dict[str, list[SignSample]], split: str, *, use_dino: bool = True) -> SignDataset:
    name = {"train": data.train_split, "dev": data.dev_split, "test": data.test_split}.get(split, split)
    if name not in by_split:
        raise ConfigError(f"{data.root}: no samples in split {name!r} (splits: {', '.join(sorted(by_split))})")
    dataset = SignDataset(by_split[name], data.features_dir or None, max_frames=data.max_frames,
                          use_dino=use_dino, preload=data.preload, long_inputs=data.long_inputs)
    dataset.log_input_report(name)  # samples without a signer, samples cut by data.long_inputs
    return dataset


def write_json(path: str | Path, obj) -> None:
    """Atomic JSON write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, ensure_ascii=False)
    os.replace(tmp, path)


def write_translations(path: str | Path, ids: list[str], hyps: list[str], refs: list[str]) -> None:
    """`id<TAB>hypothesis<TAB>reference` a line, for reading and for `rvlf score`."""
    path = Path(path)

    def one_line(text: str) -> str:  # a generated newline or tab would break the TSV
        return " ".join(text.split())

    lines = [f"{i}\t{one_line(h)}\t{one_line(r)}" for i, h, r in zip(ids, hyps, refs)]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def finish_run(trainer, stage, data: DataConfig, by_split: dict[str, list[SignSample]], out_dir: Path,
               summary: dict, *, use_dino: bool, evaluate_test: bool = True) -> dict:
    """Score the best checkpoint (Sec. 4.1) on test, write its translations and `results.json`."""
    from rvlf.train import checkpoint as ckpt

    if evaluate_test and data.test_split in by_split:
        best = out_dir / "best" if (out_dir / "best").exists() else out_dir / "last"
        stage.load_model_state(ckpt.load_weights(best / ckpt.MODEL_FILE))
        res = trainer.evaluate(split_dataset(data, by_split, "test", use_dino=use_dino))
        summary["test"] = res.metrics
        if trainer.is_main:
            write_translations(out_dir / "test_translations.tsv", res.ids, res.hyps, res.refs)
    if trainer.is_main:
        write_json(out_dir / "results.json", summary)
    return summary
