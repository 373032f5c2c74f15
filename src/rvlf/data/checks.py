"""Fail-fast checks of a dataset's samples and feature files, before step 1.

Every stage (`rvlf pretrain`, `sft`, `grpo`, `evaluate`) checks, through
`rvlf.train.common.load_samples`, every sample of every split it will use:

- the text is not empty;
- its feature file exists and is readable: a zip whose `keypoints` is `float [T,77,3]` with
  T >= 1 and whose `dino`, if any, is `float [T,3,D]` (header-only reads, `read_feature_header`);
- across the whole set, DINOv2 features are present in all files or in none, with one width D.

All problems are reported in one `FeatureSetError` naming the files (exit code 2), so a run
fails in seconds rather than mid-epoch or when scoring test hours later; with
`data.skip_bad_samples=true` the bad samples are left out instead and their number printed.

Where a sample's feature file is (`find_feature_file`): the path `rvlf extract` gives it when run
on any folder of the release, i.e. the last folders of its video path under FEATURES
(`FEATURES/train/<name>.npz` for PHOENIX-2014T's `fullFrame-210x260px/train/`), or `FEATURES/<id>.npz`.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rvlf.config import DataConfig
from rvlf.data.crops import body_share
from rvlf.data.dino_id import normalise, same_model
from rvlf.data.features import FeatureHeader, read_feature_header
from rvlf.data.poses import read_keypoints
from rvlf.data.readers import ReadNotes, SignSample, dataset_kind, read_dataset
from rvlf.data.video import is_video
from rvlf.data.walk import dangling_link
from rvlf.errors import ConfigError, InputFileError, RvlfError
from rvlf.text.script import CHAR_LEVEL, LANGS, has_chinese, script_mismatch

log = logging.getLogger("rvlf.data")

MAX_FOLDERS = 5  # how many of a video path's last folders may sit between FEATURES and the file
SHOW = 50  # problems named in the error message (`rvlf data check` lists all)


def _candidates(sample: SignSample, root: str) -> list[str]:
    """`feature_candidates` as strings (path objects cost more than the stat calls here)."""
    out: list[str] = []
    video = sample.video
    if video is not None:
        name = video.stem if is_video(video) else video.name
        folders = str(video.parent).split(os.sep)[1:]  # without the root
        for k in range(min(len(folders) - 1, MAX_FOLDERS), 0, -1):
            out.append(os.path.join(root, *folders[-k:], f"{name}.npz"))
        out.append(os.path.join(root, f"{name}.npz"))
    out.append(os.path.join(root, f"{sample.id}.npz"))
    if ":" in sample.id:  # OpenASL's crop_video.py writes the clip ids' colons as `%`
        out.append(os.path.join(root, f"{sample.id.replace(':', '%')}.npz"))
    return list(dict.fromkeys(out))


def feature_candidates(sample: SignSample, features_dir: str | Path) -> list[Path]:
    """Where `rvlf extract` may have written `sample`'s features under `features_dir`, most specific
    first: `<fk>/.../<f1>/<name>.npz` for the video's last k <= 5 folders down to `<f1>/<name>.npz`,
    then `<name>.npz` and `<id>.npz` (for OpenASL also with `:` as `%`). `name` is the video file's
    stem or the frame folder's name. Most specific first, so that a split folder (`train/NAME.npz`)
    tells apart two splits' clips of one name."""
    return [Path(p) for p in _candidates(sample, str(features_dir))]


def find_feature_file(sample: SignSample, features_dir: str | Path) -> Path:
    """The first of `feature_candidates` that exists, else `FEATURES/<id>.npz` (to name in errors)."""
    for p in _candidates(sample, str(features_dir)):
        if os.path.isfile(p):
            return Path(p)
    return Path(features_dir) / f"{sample.id}.npz"


def sample_feature_file(sample: SignSample, features_dir: str | Path | None) -> Path | None:
    """`find_feature_file` under `features_dir`, else the manifest's `features` path (None if neither)."""
    if features_dir:
        return find_feature_file(sample, features_dir)
    return Path(sample.features) if sample.features else None


@dataclass
class Problem:
    """One unusable sample: its split and id, the file at fault and what is wrong."""

    split: str
    id: str
    path: str
    problem: str
    kind: str  # empty-text | missing | unreadable | mixed-dino | dino-width

    def line(self) -> str:
        return f"{self.split}/{self.id}: {self.path}: {self.problem}"


@dataclass
class FeatureSetReport:
    """What `check_feature_set` found: headers of the good files and every problem."""

    checked: int = 0
    headers: dict[tuple[str, str], FeatureHeader] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    dino_dim: int | None = None  # the set's DINOv2 width; None: no DINOv2 features

    def bad(self) -> set[tuple[str, str]]:
        return {(p.split, p.id) for p in self.problems}

    def counts(self) -> Counter:
        return Counter(p.kind for p in self.problems)


_KIND_WORDS = {"empty-text": "empty text", "missing": "missing", "unreadable": "unreadable or malformed",
               "mixed-dino": "DINOv2 present in some files only", "dino-width": "another DINOv2 width"}


class FeatureSetError(RvlfError):
    """Samples unusable for training, all named in one message (exit code 2)."""

    def __init__(self, report: FeatureSetReport, features_dir: str | Path | None, show: int = SHOW):
        self.report = report
        if len(report.problems) == 1:  # one line naming the file
            super().__init__(f"{report.problems[0].line()} (checked before training, nothing was run; fix or "
                             "re-extract it, or set data.skip_bad_samples=true to leave it out)")
            return
        counts = ", ".join(f"{n} {_KIND_WORDS[k]}" for k, n in sorted(report.counts().items()))
        where = f" in {features_dir}" if features_dir else ""
        lines = [f"{len(report.bad())} of {report.checked} samples cannot be used ({counts}){where}; "
                 "checked before training, nothing was run. Fix or re-extract them, or set "
                 "data.skip_bad_samples=true to leave them out:"]
        lines += [f"  {p.line()}" for p in report.problems[:show]]
        if len(report.problems) > show:
            lines.append(f"  ... and {len(report.problems) - show} more (`rvlf data check --features` lists them all)")
        super().__init__("\n".join(lines))


def check_feature_set(by_split: dict[str, list[SignSample]], features_dir: str | Path | None, *,
                      splits: Iterable[str] | None = None) -> FeatureSetReport:
    """Check the texts and feature files of `splits` (default: all of `by_split`), header-only.

    Reads each file's zip directory and `.npy` headers, never its arrays: about a millisecond a
    file (benchmarks/). Set-level rules: DINOv2 in all files or in none (else the minority is at
    fault), one DINOv2 width (else the files of the less common widths are at fault).
    """
    report = FeatureSetReport()
    names = list(by_split) if splits is None else [s for s in splits if s in by_split]
    for split in names:
        for s in by_split[split]:
            report.checked += 1
            if not s.text.strip():
                report.problems.append(Problem(split, s.id, s.source or "annotations", "empty text", "empty-text"))
            path = sample_feature_file(s, features_dir)
            if path is None:
                report.problems.append(Problem(split, s.id, s.source or s.id, "no feature file: set "
                                               "data.features_dir or give `features` in the manifest", "missing"))
                continue
            try:
                report.headers[(split, s.id)] = read_feature_header(path)
            except InputFileError as err:
                kind = "unreadable" if path.exists() else "missing"
                problem = err.problem
                tried = feature_candidates(s, features_dir) if kind == "missing" and features_dir else [path]
                link = next(((p, why) for p in tried if (why := dangling_link(p))), None)
                if kind == "missing" and link is not None:  # the file is there but a link on its way is broken
                    path, problem = link
                elif kind == "missing" and features_dir:  # name where rvlf extract would have written it
                    path = tried[0]
                    others = [os.path.relpath(p, features_dir) for p in tried[1:]]
                    if others:
                        problem += f" (nor {', '.join(others)} under {features_dir})"
                report.problems.append(Problem(split, s.id, str(path), problem, kind))
    _check_dino(report)
    return report


def dino_problems(headers: dict[tuple[str, str], FeatureHeader]) -> tuple[list[Problem], int | None]:
    """(problems, the set's DINOv2 width or None): DINOv2 must be in all files or none (else the
    minority is at fault), with one width (else the files of the less common widths are)."""
    problems: list[Problem] = []
    with_dino = {k: h for k, h in headers.items() if h.dino_dim is not None}
    without = {k: h for k, h in headers.items() if h.dino_dim is None}
    if with_dino and without:
        odd, others = (without, "have them") if len(with_dino) >= len(without) else (with_dino, "do not")
        n_other = len(headers) - len(odd)
        for (split, sid), h in odd.items():
            what = "no DINOv2 features" if h.dino_dim is None else f"DINOv2 features (width {h.dino_dim})"
            problems.append(Problem(split, sid, str(h.path), f"{what}, while the {n_other} other files {others}",
                                    "mixed-dino"))
        if odd is with_dino:
            return problems, None
    widths = Counter(h.dino_dim for h in with_dino.values())
    if not widths:
        return problems, None
    dim, n = widths.most_common(1)[0]
    for (split, sid), h in with_dino.items():
        if h.dino_dim != dim:
            problems.append(Problem(split, sid, str(h.path), f"DINOv2 width {h.dino_dim}, the other {n} files have {dim}",
                                    "dino-width"))
    return problems, dim


def check_dino_model(headers: dict[tuple[str, str], FeatureHeader], dino_model: str) -> str | None:
    """Compare the DINOv2 the feature files were extracted with (`meta.dino_model`) with the
    config's `data.dino_model`, which the checkpoint copies (`dinov2/`) and `rvlf translate VIDEO`
    encodes crops with. Files that name no model (older or hand-made files) are not compared.

    Returns None when every file names the config's model (after `dino_id.normalise`) or one of
    the same weights (`dino_id.same_model`), else one warning line naming the config's value, the
    files' value, how many files and one of them. Raises `ConfigError` before step 1 when the two
    are different models for sure (other architecture, or the same tensors with other values)."""
    by_name: dict[str, list[FeatureHeader]] = {}
    for h in headers.values():
        if h.dino_dim is not None and h.dino_model:
            by_name.setdefault(h.dino_model, []).append(h)
    by_model: dict[str, list[FeatureHeader]] = {}
    for name, files in by_name.items():  # normalised once a name (a stat), not once a file
        by_model.setdefault(normalise(name), []).extend(files)
    want = normalise(dino_model)
    lines = []
    for model, files in sorted(by_model.items(), key=lambda kv: -len(kv[1])):
        if model == want:
            continue
        prints = {h.dino_fingerprint for h in files}
        verdict, why = same_model(dino_model, model, fingerprint_b=prints.pop() if len(prints) == 1 else None)
        if verdict == "same":
            continue
        what = (f"data.dino_model is {dino_model!r} but {len(files)} of {len(headers)} feature files were extracted "
                f"with {files[0].dino_model!r} (e.g. {files[0].path})")
        if verdict == "differ":
            raise ConfigError(f"{what}: different DINOv2 models ({why}), so the checkpoint would encode video crops "
                              f"with another model than its training features; set data.dino_model="
                              f"{files[0].dino_model} or re-extract with --dino {dino_model} (nothing was run)")
        lines.append(f"{what}; the checkpoint copies data.dino_model and `rvlf translate VIDEO` encodes crops with "
                     f"it: set data.dino_model={files[0].dino_model} unless it is the same model ({why})")
    return "; ".join(lines) or None


def _check_dino(report: FeatureSetReport) -> None:
    problems, report.dino_dim = dino_problems(report.headers)
    report.problems += problems


def drop_bad_samples(by_split: dict[str, list[SignSample]], report: FeatureSetReport) -> dict[str, list[SignSample]]:
    """`by_split` without the samples `report` found at fault."""
    bad = report.bad()
    return {split: [s for s in samples if (split, s.id) not in bad] for split, samples in by_split.items()}


def require_labels_lang(data: DataConfig, kind: str) -> None:
    """Label files (`labels.*`) do not say their language: `data.lang` must (ConfigError otherwise)."""
    if kind == "labels" and not data.lang:
        raise ConfigError("data.lang is empty: label files do not say their language; set data.lang=de|zh|en|...")


def check_language(data: DataConfig, kind: str, samples: list[SignSample]) -> None:
    """The run's `data.language()` must be one the protocol knows, and the texts' language (each
    sample's, from the release or the manifest) must be it: it decides the tokenizer, the metrics (Chinese by character) and the model
    card. A config written for another dataset (the demo's `lang: en` on CSL-Daily) would otherwise
    train and score with the wrong protocol, silently."""
    want = data.language().strip().lower()
    if want not in LANGS:  # the tokenizer and the metrics know these; found at the first evaluation otherwise
        raise ConfigError(f"data.lang {data.language()!r}: rvlf's tokenizers and evaluation protocol know "
                          f"{', '.join(LANGS)} (docs/evaluation.md)")
    by_lang: dict[str, list[SignSample]] = {}
    for s in samples:
        by_lang.setdefault(s.lang.strip().lower(), []).append(s)
    if len(by_lang) > 1:  # no data.lang fits them all: naming one would fail on the others
        per_lang = "; ".join(f"{lang!r} {len(group)} (first {group[0].split}/{group[0].id}, "
                             f"{group[0].source or group[0].id})"
                             for lang, group in sorted(by_lang.items(), key=lambda kv: -len(kv[1])))
        what = "a manifest" if kind == "manifest" else f"a {kind} dataset"
        raise ConfigError(f"{data.root}: {what} must hold one language (the run's data.lang, which picks the "
                          f"tokenizer and the metrics), but its texts are in {len(by_lang)}: {per_lang}; fix the odd "
                          "lines' `lang`, or split it into one manifest per language")
    other = next((s for s in samples if s.lang.strip().lower() != want), None)
    if other is None:
        _check_script(data, kind, samples, want)
        return
    langs = sorted({s.lang for s in samples})
    set_by = f"data.lang is {data.lang!r}" if data.lang else f"data.lang is empty (so {want!r} for {data.dataset!r})"
    raise ConfigError(f"{set_by}, but the {kind} texts under {data.root} are in {', '.join(map(repr, langs))} "
                      f"(e.g. {other.split}/{other.id}, {other.source or other.lang}): set data.lang={other.lang}"
                      + (" or leave it empty for the dataset's own language" if kind in ("phoenix2014t", "csl-daily",
                                                                                        "how2sign", "openasl") else ""))


def _check_script(data: DataConfig, kind: str, samples: list[SignSample], want: str) -> None:
    """The texts' script must fit the language (`rvlf.text.script`): Chinese texts under de/en, or
    no Chinese under zh, would be tokenized and scored in the wrong units (label files do not say
    their language: `data.lang` / `--lang` is a guess the texts can contradict)."""
    m = script_mismatch([s.text for s in samples], want)
    if m is None:
        odd = [s for s in samples if s.text.strip() and has_chinese(s.text) != (want in CHAR_LEVEL)]
        if odd:  # a few lines in the wrong script: training goes on, but says which
            what = "hold no Chinese character" if want in CHAR_LEVEL else "are Chinese"
            log.warning("%d of %d %s texts under %s %s, unlike the rest (language %r; e.g. %s/%s, %s: %r): they "
                        "are tokenized and scored as %r", len(odd), len(samples), kind, data.root, what, want,
                        odd[0].split, odd[0].id, odd[0].source or odd[0].id, odd[0].text.strip()[:40], want)
        return
    first = next(s for s in samples if s.text.strip()[:40] == m["example"])
    where = f"e.g. {first.split}/{first.id}, {first.source or first.id}: {m['example']!r}"
    if want == "zh":
        found, fix = "hold no Chinese character", "de or en, the texts' language"
    else:
        found, fix = "are Chinese", "zh (Chinese is scored by character)"
    set_by = f"data.lang is {data.lang!r}" if data.lang else f"the language is {want!r}"
    field = "their `lang`" if kind == "manifest" else "data.lang"
    raise ConfigError(f"{set_by}, but {m['wrong']} of {m['of']} {kind} texts under {data.root} {found} ({where}): "
                      f"set {field} to {fix}")


def read_checked(data: DataConfig, splits: Iterable[str] | None = None, *, notes: ReadNotes | None = None,
                 lang_from_manifest: bool = False) -> list[SignSample]:
    """The samples of `data`'s dataset (`splits`: default all), after the checks every stage applies
    before its feature-file checks: `data.root` set, label files given a language, the protocol
    knows `data.lang`, the texts are in it and in one language (`check_language`).

    Shared by `rvlf.train.common.load_samples` (training, evaluate) and `rvlf data check`, which
    passes `lang_from_manifest=True`: with no `--lang`, a manifest in one language is checked in
    that language (training takes it from `data.lang`). Raises ConfigError / InputFileError."""
    if not data.root:
        raise ConfigError("data.root is empty: set it in the config or as data.root=PATH")
    kind = dataset_kind(data.dataset)
    require_labels_lang(data, kind)
    samples = read_dataset(kind, data.root, splits, video_root=data.video_root or None,
                           lang=data.language() if kind == "labels" else None, notes=notes)
    langs = {s.lang for s in samples}
    if lang_from_manifest and not data.lang and kind == "manifest" and len(langs) == 1:
        data.lang = langs.pop()
    check_language(data, kind, samples)
    return samples


def feature_summary(path: str | Path) -> tuple[int, float]:
    """(frames, share of frames in which the body is found) of a feature or keypoint file.

    An `rvlf extract` file answers from its `meta` (`num_frames`, `detection_rates.body`) without
    reading the arrays; other files are read (keypoints only)."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and zipfile.is_zipfile(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
                rates = meta.get("detection_rates") if isinstance(meta, dict) else None
                if isinstance(rates, dict) and "body" in rates and "num_frames" in meta:
                    return int(meta["num_frames"]), float(rates["body"])
                if "keypoints" in z.files:
                    kp = z["keypoints"]
                    if kp.ndim != 3 or kp.shape[1:] != (77, 3) or not np.issubdtype(kp.dtype, np.number):
                        raise InputFileError(path, f"`keypoints` is {kp.dtype} {list(kp.shape)}, expected float [T,77,3]")
                    size = (meta.get("width"), meta.get("height")) if isinstance(meta, dict) else (None, None)
                    frame = size if all(isinstance(v, int) for v in size) else None
                    return int(kp.shape[0]), body_share(kp, frame)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputFileError(path, f"not a readable .npz file ({err})") from None

    kp = read_keypoints(path)
    return len(kp), body_share(kp)
