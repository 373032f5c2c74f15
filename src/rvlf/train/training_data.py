"""What a model was trained on: the record a checkpoint and an export carry, and the notice it gives.

Training writes `training_data.json` into every checkpoint (`write_record`, called by the stages'
`save_extra`); `rvlf export` carries it in `rvlf_model.json` (`"training_data"`). It names the
dataset (`data.dataset`, a pretty name such as PHOENIX-2014T, or the manifest's folder), the output
language (ISO code) and whether the data is rvlf's synthetic demo language (`synthetic`).

A checkpoint from before the record existed is judged from its `config.yaml` (`read`): a known
benchmark (`data.dataset` phoenix, csl-daily, how2sign, openasl) is that benchmark; a JSONL
manifest beside a demo-corpus stamp (`corpus.json`, `rvlf.synth.corpus`) or whose first feature
file says `"synthetic": true` is the demo language; a manifest that cannot be found from here is
"unknown". Only the standard library is imported here (the CLI's start-up stays light).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rvlf.data.features import read_feature_meta

RECORD_FILE = "training_data.json"
DEMO_NAME = "rvlf synthetic demo language"
BENCHMARKS = {"phoenix": "PHOENIX-2014T", "csl-daily": "CSL-Daily", "how2sign": "How2Sign", "openasl": "OpenASL"}
LANGUAGE_NAMES = {"en": "English", "de": "German", "zh": "Chinese"}


@dataclass(frozen=True)
class TrainingData:
    """What a model was trained on.

    `name`: the data's name (`DEMO_NAME`, a benchmark's name, a manifest's folder, or "unknown");
    `dataset`: the config's `data.dataset`; `language`: ISO code of the output text;
    `synthetic`: True for the demo language, False for other data, None when unknown;
    `how`: "recorded" (written by training), "inferred from config.yaml" or "unknown"."""

    name: str
    dataset: str
    language: str
    synthetic: bool | None
    how: str = "recorded"

    def describe(self) -> str:
        """One phrase: `rvlf synthetic demo language (en)`, `PHOENIX-2014T (German)`, `unknown data`."""
        if self.synthetic is None:
            return "unknown data"
        return f"{self.name} ({LANGUAGE_NAMES.get(self.language, self.language)})"

    def notice(self) -> str | None:
        """The line every output shows beside the translation, or None for a model trained on real data."""
        if self.synthetic:
            return (f"this model was trained on the {DEMO_NAME} (generated sentences, rendered signers), not on a "
                    "real sign language: its output is not a translation of real signing")
        if self.synthetic is None:
            return ("this model does not record what it was trained on (a checkpoint from before rvlf recorded it, "
                    "and its config's data.root cannot be found): its output may not be a translation")
        return None


def _manifest_is_demo(manifest: Path) -> bool:
    """A JSONL manifest made by `rvlf.synth.corpus.generate_corpus`: its `corpus.json` stamp, or its
    first record's feature file marked `"synthetic": true`."""
    stamp = manifest.parent / "corpus.json"
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and "n_signers" in data["config"]:
            return True
    except (OSError, ValueError):
        pass
    try:
        with open(manifest, encoding="utf-8") as f:
            first = json.loads(f.readline() or "{}")
        feats = first.get("features") if isinstance(first, dict) else None
        if isinstance(feats, str) and feats:
            path = Path(feats) if Path(feats).is_absolute() else manifest.parent / feats
            return read_feature_meta(path).get("synthetic") is True
    except Exception:  # noqa: BLE001 - an unreadable manifest or feature file: not known to be the demo
        return False
    return False


def _find(root: str, near: Path | None) -> Path | None:
    """`root` as given (relative to the working folder), else relative to an ancestor of `near`
    (a run's checkpoint: `runs/demo/corpus/...` from the folder the run was started in)."""
    if not root:
        return None
    path = Path(root).expanduser()
    if path.exists():
        return path
    if near is not None and not path.is_absolute():
        for base in Path(near).resolve().parents:
            if (base / path).exists():
                return base / path
    return None


def from_config(cfg, near: Path | None = None, how: str = "recorded") -> TrainingData:
    """The record for a run's config (`cfg.data`); `near`: a folder to look for a relative `data.root` from."""
    data = cfg.data
    lang = data.language()
    if data.dataset in BENCHMARKS:
        return TrainingData(BENCHMARKS[data.dataset], data.dataset, lang, False, how)
    root = _find(data.root, near)
    if root is None:
        return TrainingData("unknown", data.dataset, lang, None, "unknown")
    manifest = root if root.is_file() else root / "manifest.jsonl"
    if data.dataset == "manifest" and manifest.is_file() and _manifest_is_demo(manifest):
        return TrainingData(DEMO_NAME, data.dataset, lang, True, how)
    name = (root.parent.name if root.is_file() else root.name) or data.dataset
    return TrainingData(name, data.dataset, lang, False, how)


def to_dict(record: TrainingData) -> dict:
    out = asdict(record)
    out.pop("how")
    return out


def write_record(directory: str | Path, cfg) -> None:
    """Write `directory/training_data.json` for a run of config `cfg` (a checkpoint being saved)."""
    record = from_config(cfg)
    Path(directory, RECORD_FILE).write_text(json.dumps(to_dict(record), indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")


def _parse(data, where: str) -> TrainingData | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    synthetic = data.get("synthetic")
    return TrainingData(data["name"], str(data.get("dataset", "")), str(data.get("language", "")),
                        synthetic if isinstance(synthetic, bool) else None, where)


def read(directory: str | Path, cfg=None) -> TrainingData:
    """What the model in `directory` (a checkpoint or an export) was trained on: its record, else
    inferred from `cfg` (its config) for checkpoints from before the record, else unknown."""
    directory = Path(directory)
    for path, key in ((directory / RECORD_FILE, None), (directory / "rvlf_model.json", "training_data")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        record = _parse(data.get(key) if key and isinstance(data, dict) else data, "recorded")
        if record is not None:
            return record
    if cfg is None:
        return TrainingData("unknown", "", "", None, "unknown")
    return from_config(cfg, near=directory, how="inferred from config.yaml")
