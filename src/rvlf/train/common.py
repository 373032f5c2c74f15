"""Pieces every stage recipe uses: loading the splits (checked before step 1), the run folder, the results file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from rvlf import atomic
from rvlf.config import DataConfig
from rvlf.data.checks import (FeatureSetError, check_dino_model, check_feature_set, drop_bad_samples,
                              read_checked)
from rvlf.data.dataset import SignDataset
from rvlf.data.readers import SignSample
from rvlf.errors import ConfigError
from rvlf.text.files import one_line
from rvlf.text.metrics import protocol, standard_bleu
from rvlf.train import checkpoint as ckpt

log = logging.getLogger("rvlf.data")


def split_name(data: DataConfig, split: str) -> str:
    """The dataset's split behind a stage's role (`train` -> `data.train_split`, ...)."""
    return {"train": data.train_split, "dev": data.dev_split, "test": data.test_split}.get(split, split)


def load_samples(data: DataConfig, splits: Iterable[str] | None = None, *, check: bool = True,
                 dino_model: str | None = None) -> dict[str, list[SignSample]]:
    """All samples of the configured dataset, by split name, checked before anything is trained.

    `splits`: the split names the caller will use (default: `data.train_split`, `dev_split`,
    `test_split`). Every sample of those splits is checked (`rvlf.data.checks`: non-empty text,
    feature file present and readable, `keypoints [T,77,3]` with T >= 1, DINOv2 in all files or
    none, one width; header-only reads). Problems raise one `FeatureSetError` naming every file
    (exit code 2), or with `data.skip_bad_samples=true` the bad samples are left out and counted.
    `dino_model` (stages that use DINOv2 features: `data.dino_model`): the model the feature files
    name must be it (`rvlf.data.checks.check_dino_model`: one warning line, or a `ConfigError` when
    they are different models for sure).
    """
    samples = read_checked(data)  # shared with `rvlf data check`
    by_split: dict[str, list[SignSample]] = {}
    for s in samples:
        by_split.setdefault(s.split, []).append(s)
    _warn_shared_ids(by_split)
    if check:
        names = list(dict.fromkeys(splits or (data.train_split, data.dev_split, data.test_split)))
        report = check_feature_set(by_split, data.features_dir or None, splits=names)
        if dino_model:
            warning = check_dino_model(report.headers, dino_model)
            if warning:
                log.warning("%s", warning)
        if report.problems:
            if not data.skip_bad_samples:
                raise FeatureSetError(report, data.features_dir or None)
            by_split = drop_bad_samples(by_split, report)
            per_split = ", ".join(f"{split} {n}" for split, n in sorted(_count_by_split(report).items()))
            log.warning("data.skip_bad_samples=true: left out %d of %d samples (%s) whose text or feature file is "
                        "unusable; `rvlf data check` lists them", len(report.bad()), report.checked, per_split)
    return by_split


def _count_by_split(report) -> dict[str, int]:
    out: dict[str, int] = {}
    for split, _ in report.bad():
        out[split] = out.get(split, 0) + 1
    return out


def _warn_shared_ids(by_split: dict[str, list[SignSample]]) -> None:
    """One warning when an id is in two splits (train/test leakage, or a release's naming clash)."""
    seen: dict[str, str] = {}
    shared: list[str] = []
    for split, samples in by_split.items():
        for s in samples:
            if s.id in seen and seen[s.id] != split:
                shared.append(f"{s.id} ({seen[s.id]}, {split})")
            seen.setdefault(s.id, split)
    if shared:
        log.warning("%d id(s) appear in more than one split, e.g. %s; `rvlf data check` lists them",
                    len(shared), ", ".join(shared[:3]))


def split_dataset(data: DataConfig, by_split: dict[str, list[SignSample]], split: str, *, use_dino: bool = True) -> SignDataset:
    name = split_name(data, split)
    if name not in by_split or not by_split[name]:
        have = ", ".join(sorted(k for k, v in by_split.items() if v)) or "none"
        raise ConfigError(f"{data.root}: no samples in split {name!r} (splits: {have})")
    dataset = SignDataset(by_split[name], data.features_dir or None, max_frames=data.max_frames,
                          use_dino=use_dino, preload=data.preload, long_inputs=data.long_inputs)
    dataset.log_input_report(name)  # samples without a signer, samples cut by data.long_inputs
    return dataset


def write_json(path: str | Path, obj) -> None:
    """Atomic JSON write (`rvlf.atomic.write_text`: `WriteError` naming `path` when the disk refuses)."""
    atomic.write_text(path, json.dumps(obj, indent=1, ensure_ascii=False), what="the results")


def write_translations(path: str | Path, ids: list[str], hyps: list[str], refs: list[str]) -> None:
    """`id<TAB>hypothesis<TAB>reference` a line, for reading and for `rvlf score`."""
    path = Path(path)
    lines = [f"{i}\t{one_line(h)}\t{one_line(r)}" for i, h, r in zip(ids, hyps, refs)]
    atomic.write_text(path, "\n".join(lines) + "\n", what="the translations")


def finish_run(trainer, stage, data: DataConfig, by_split: dict[str, list[SignSample]], out_dir: Path,
               summary: dict, *, use_dino: bool, evaluate_test: bool = True) -> dict:
    """Score the best checkpoint (Sec. 4.1) on test, write its translations and `results.json`.

    `results.json` also gets `protocol` (how `dev`/`test` were scored: tokens and sacrebleu signatures,
    `rvlf.text.metrics.protocol`) and `test_sacrebleu`: sacrebleu's standard BLEU-1..4 of the same test
    translations (`13a`, `zh` for Chinese) with its signature, to compare with either kind of table."""
    if evaluate_test and data.test_split in by_split:
        best = out_dir / "best" if (out_dir / "best").exists() else out_dir / "last"
        trainer.load_weights(best / ckpt.MODEL_FILE)
        res = trainer.evaluate(split_dataset(data, by_split, "test", use_dino=use_dino))
        summary["test"] = res.metrics
        summary["test_sacrebleu"] = standard_bleu(res.hyps, res.refs, stage.lang)
        if trainer.is_main:
            write_translations(out_dir / "test_translations.tsv", res.ids, res.hyps, res.refs)
    summary["protocol"] = protocol(stage.lang)
    if trainer.is_main:
        write_json(out_dir / "results.json", summary)
    return summary
