"""Dataset annotations -> `SignSample` records (Sec. 4.1's four corpora, label files, a JSONL manifest).

Each reader follows the files of the release as they are on disk (checked against the real files,
see `../shared/fixtures/real_formats/` and docs/datasets.md) and returns samples for the splits
`train`, `dev`, `test` (How2Sign's `val` and OpenASL's `valid` become `dev`). `ROOT` (`data.root`)
may be the dataset folder or one of its annotation files, for every kind.

| kind | annotations (ROOT = the folder, or one of these files) | video |
| --- | --- | --- |
| `phoenix2014t` | `[PHOENIX-2014-T/][annotations/manual/]PHOENIX-2014-T.{train,dev,test}.corpus.csv`, `|`-separated, no quoting | `features/fullFrame-210x260px/SPLIT/NAME/` |
| `csl-daily` | `[sentence_label/]csl2020ct_v2.pkl` + `split_1.txt` (`name|split`) | `sentence/frames_512x512/NAME/` |
| `how2sign` | `how2sign_realigned_{train,val,test}.csv` (tab-separated, CSV quoting), or the official download `sentence_level/SPLIT/text/en/raw_text/re_aligned/` | `SPLIT_rgb_front_clips/raw_videos/NAME.mp4` or `sentence_level/SPLIT/rgb_front/raw_videos/NAME.mp4` |
| `openasl` | `[data/]openasl-v1.0.tsv` (tab-separated, CSV quoting) | `VIDEO_ROOT/VID.mp4`, `:` as `%` (default `clips/`) |
| `labels` | GFSLT-VLP / Uni-Sign `labels.{train,dev,test}` (gzip pickles of `{key: {name, text, ...}}`) | `VIDEO_ROOT/` + `imgs_path` / `video_path` (default: beside the label files) |
| `manifest` | a `.jsonl` file (or `ROOT/manifest.jsonl`), see docs/architecture.md | as given |

What the readers tolerate, and report instead of failing on (`rvlf data check` lists it all):
a name a split list holds but the annotations lack (skipped, one warning naming them, kept in
`ReadNotes.missing`), annotations no split lists (`ReadNotes.unlisted`), the same id in two splits
(train/test leakage) and empty texts (kept as `""`; training refuses them before step 1 unless
`data.skip_bad_samples=true`). A missing file, a missing column, a malformed line, an unknown
split or an id repeated within one split raises `InputFileError` naming the file, line and column.
Texts keep their characters; runs of whitespace (a tab inside a sentence) become one space.
"""

from __future__ import annotations

import csv
import logging
import numbers
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rvlf.data.walk import dangling_link
from rvlf.errors import InputFileError, RvlfError
from rvlf.jsonfile import loads
from rvlf.text.script import has_chinese


def _safe_load(path: Path):
    """`rvlf.data.safe_pickle.safe_load`, imported on first use: it loads NumPy, which `rvlf --help` and
    the readers of CSV/TSV annotations do not need (deferred on purpose)."""
    # NumPy via safe_pickle: only for pickle annotations (readers loads at every `rvlf` start-up)
    from rvlf.data.safe_pickle import safe_load

    return safe_load(path)


log = logging.getLogger("rvlf.data")

SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}
_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class SignSample:
    """One sentence-level sign video with its translation; paths are absolute or None.

    `source` says where the sample was read (`file:line`), for messages; it takes no part in `==`.
    """

    id: str
    split: str
    text: str
    lang: str
    video: Path | None = None
    keypoints: Path | None = None
    features: Path | None = None
    num_frames: int | None = None
    signer: str | None = None
    source: str | None = field(default=None, compare=False, repr=False)


@dataclass
class ReadNotes:
    """What a reader noticed without failing (filled by `read_dataset(..., notes=ReadNotes())`).

    missing:  (split, name, where) for names a split list holds that the annotations lack (skipped)
    unlisted: names the annotations hold that no split list mentions (not read)
    log:      False when the caller lists these itself (`rvlf data check`): the reader then logs no
              warning, so that each problem is said once
    """

    missing: list[tuple[str, str, str]] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    log: bool = True


@dataclass
class _Options:
    video_root: Path | None = None
    lang: str | None = None
    notes: ReadNotes = field(default_factory=ReadNotes)


class _Ids:
    """Rejects an id repeated within one split, pointing at both occurrences (the same id in two
    splits is allowed here and reported by `rvlf data check`)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}

    def add(self, sample_id: str, split: str, path: Path, line: int | None, column: str) -> None:
        where = f"{path.name}:{line}" if line is not None else path.name
        key = (split, sample_id)
        if key in self.seen:
            raise InputFileError(path, f"duplicate id {sample_id!r} in split {split!r} (first at {self.seen[key]})",
                                 line, column)
        self.seen[key] = where


def _split(value: str, path: Path, line: int | None, column: str) -> str:
    split = _SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        raise InputFileError(path, f"unknown split {value!r} (expected train, dev or test)", line, column)
    return split


def _need_file(path: Path, hint: str = "") -> Path:
    if not path.is_file():
        link = dangling_link(path)  # a link on the way to nothing (shared storage not mounted?)
        raise InputFileError(path, link or "file not found" + (f" ({hint})" if hint else ""))
    return path


def _rows(path: Path, delimiter: str, columns: Iterable[str], *, quoting: bool) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a delimited text file with a header; checks columns and widths.

    The line number is the one a record starts on (a quoted field may hold line breaks).

    `quoting=True`: standard CSV quoting (a field holding the delimiter or `"` is wrapped in quotes,
    inner quotes doubled), as Python's csv / pandas write How2Sign and OpenASL; `False`: none, a `"`
    is literal (PHOENIX-2014T).
    """
    with _need_file(path).open(encoding="utf-8-sig", newline="") as f:
        if quoting:
            reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True)
        else:
            reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE)
        start = 1
        try:
            header = [h.strip() for h in next(reader, [])]
            for col in columns:
                if col not in header:
                    raise InputFileError(path, f"missing column {col!r} (header: {delimiter.join(header)})", 1, col)
            start = reader.line_num + 1
            for row in reader:
                line, start = start, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise InputFileError(path, f"{len(row)} fields, the header has {len(header)}", line)
                yield line, dict(zip(header, row))
        except csv.Error as err:
            end = f"; the record runs on to line {reader.line_num}" if reader.line_num > start else ""
            raise InputFileError(path, f"malformed CSV ({err}{end}; an unclosed quote?)"
                                 if '"' in str(err) or end else f"malformed CSV ({err})", start) from None
        except UnicodeDecodeError as err:
            raise InputFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def _text(value: str) -> str:
    """The text with runs of whitespace (tabs, newlines) as one space; may be empty."""
    return " ".join(str(value).split())


def _ancestor(path: Path, *names: str) -> Path | None:
    """The folder above `path` when `path`'s last folders are `names` (innermost last), else None."""
    parts = path.parts
    if len(parts) > len(names) and tuple(parts[len(parts) - len(names):]) == names:
        return Path(*parts[: len(parts) - len(names)])
    return None


# ---------------------------------------------------------------- PHOENIX-2014T


def _phoenix_folders(root: Path) -> tuple[Path, Path]:
    """(folder of the corpus files, dataset root holding `features/`) for any accepted ROOT."""
    if root.is_file():
        ann = root.parent
    elif (root / "annotations" / "manual").is_dir():
        return root / "annotations" / "manual", root
    elif (root / "PHOENIX-2014-T" / "annotations" / "manual").is_dir():  # the release's outer folder
        return root / "PHOENIX-2014-T" / "annotations" / "manual", root / "PHOENIX-2014-T"
    else:
        ann = root
    return ann, _ancestor(ann, "annotations", "manual") or ann


def read_phoenix(root: Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """RWTH-PHOENIX-Weather-2014T (German): `name|video|start|end|speaker|orth|translation`, no quoting."""
    ann, base = _phoenix_folders(root)
    ids, out = _Ids(), []
    for split in splits:
        path = ann / f"PHOENIX-2014-T.{split}.corpus.csv"
        for line, row in _rows(path, "|", ("name", "video", "speaker", "translation"), quoting=False):
            name = row["name"].strip()
            ids.add(name, split, path, line, "name")
            out.append(SignSample(
                id=name, split=split, lang="de", text=_text(row["translation"]),
                video=base / "features" / "fullFrame-210x260px" / split / name,
                signer=row["speaker"].strip() or None, source=f"{path}:{line}",
            ))
    return out


# ---------------------------------------------------------------- CSL-Daily


def _csl_folders(root: Path) -> tuple[Path, Path]:
    """(the `sentence_label` folder, the dataset root holding `sentence/`)."""
    if root.is_file():
        labels = root.parent
    elif (root / "sentence_label").is_dir():
        return root / "sentence_label", root
    else:
        labels = root
    return labels, (labels.parent if labels.name == "sentence_label" else labels)


def read_csl_daily(root: Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """CSL-Daily (Chinese): `csl2020ct_v2.pkl` (`info` entries) and `split_1.txt` (`name|split`).

    As in the real release, `split_1.txt` may list a name the pkl lacks (skipped with one warning)
    and the pkl may hold names no split lists (counted in `opts.notes.unlisted`).
    """
    opts = opts or _Options()
    labels, base = _csl_folders(root)
    pkl = _need_file(labels / "csl2020ct_v2.pkl")
    data = _safe_load(pkl)
    if not isinstance(data, dict) or not isinstance(data.get("info"), list):
        raise InputFileError(pkl, "expected a dict with an `info` list")
    info: dict[str, dict] = {}
    for i, entry in enumerate(data["info"]):
        if not isinstance(entry, dict):
            raise InputFileError(pkl, f"info[{i}] is not a dict")
        for key in ("name", "label_char"):
            if key not in entry:
                raise InputFileError(pkl, f"info[{i}] has no {key!r}", column=key)
        info[str(entry["name"])] = entry

    wanted, ids, out, listed = set(splits), _Ids(), [], set()
    missing: list[tuple[str, str, str]] = []
    split_file = labels / "split_1.txt"
    for line, row in _rows(split_file, "|", ("name", "split"), quoting=False):
        name, split = row["name"].strip(), _split(row["split"], split_file, line, "split")
        ids.add(name, split, split_file, line, "name")
        listed.add(name)
        if split not in wanted:
            continue
        entry = info.get(name)
        if entry is None:
            missing.append((split, name, f"{split_file.name}:{line}"))
            continue
        chars = entry["label_char"]
        text = "".join(map(str, chars)) if isinstance(chars, (list, tuple)) else str(chars)
        length = entry.get("length")
        out.append(SignSample(
            id=name, split=split, lang="zh", text="".join(text.split()),
            video=base / "sentence" / "frames_512x512" / name,
            num_frames=int(length) if isinstance(length, numbers.Real) and not isinstance(length, bool) else None,
            signer=str(entry["signer"]) if entry.get("signer") is not None else None,
            source=f"{split_file}:{line}",
        ))
    if missing and opts.notes.log:
        shown = ", ".join(f"{n} ({w}, {s})" for s, n, w in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        log.warning("%s: skipped %d name(s) listed in %s but absent from %s: %s%s",
                    split_file, len(missing), split_file.name, pkl.name, shown, more)
    opts.notes.missing += missing
    opts.notes.unlisted += sorted(set(info) - listed)
    return out


# ---------------------------------------------------------------- How2Sign


def _how2sign_base(root: Path) -> Path:
    """The folder that holds either layout, from ROOT (a folder or one of the CSV files)."""
    if root.is_file():
        m = re.fullmatch(r"how2sign_realigned_(train|val|test)\.csv", root.name)
        official = m and _ancestor(root.parent, "sentence_level", m.group(1), "text", "en", "raw_text", "re_aligned")
        return official or root.parent
    if root.name == "sentence_level" and not (root / "sentence_level").is_dir():
        return root.parent
    return root


def read_how2sign(root: Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """How2Sign (English): `how2sign_realigned_{train,val,test}.csv`, tab-separated with CSV quoting.

    Two layouts: the common one (CSVs and `SPLIT_rgb_front_clips/raw_videos/` in one folder) and
    the official download's (`sentence_level/SPLIT/text/en/raw_text/re_aligned/*.csv`,
    `sentence_level/SPLIT/rgb_front/raw_videos/`); per split, the CSV and video folder found are used.
    """
    base = _how2sign_base(root)
    ids, out = _Ids(), []
    for split in splits:
        tag = "val" if split == "dev" else split
        official_dir = base / "sentence_level" / tag
        csvs = [base / f"how2sign_realigned_{tag}.csv",
                official_dir / "text" / "en" / "raw_text" / "re_aligned" / f"how2sign_realigned_{tag}.csv"]
        path = next((p for p in csvs if p.is_file()), None)
        if path is None:
            raise InputFileError(csvs[0], f"file not found (nor {csvs[1].relative_to(base)} under {base})")
        videos = [base / f"{tag}_rgb_front_clips" / "raw_videos", official_dir / "rgb_front" / "raw_videos"]
        video_dir = next((v for v in videos if v.is_dir()), videos[0] if path == csvs[0] else videos[1])
        for line, row in _rows(path, "\t", ("VIDEO_ID", "SENTENCE_NAME", "SENTENCE"), quoting=True):
            name = row["SENTENCE_NAME"].strip()
            ids.add(name, split, path, line, "SENTENCE_NAME")
            out.append(SignSample(id=name, split=split, lang="en", text=_text(row["SENTENCE"]),
                                  video=video_dir / f"{name}.mp4", source=f"{path}:{line}"))
    return out


# ---------------------------------------------------------------- OpenASL


def read_openasl(root: Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """OpenASL (English): `openasl-v1.0.tsv` (`vid, yid, start, end, raw-text, ..., split`), CSV quoting.

    ROOT is the `.tsv` itself or a folder holding it (also as `data/openasl-v1.0.tsv`, the
    repository's layout); clips are `VIDEO_ROOT/VID.mp4` (`data.video_root`, default `ROOT/clips`),
    with `:` written as `%` as the release's `prep/crop_video.py` names them (unless a clip named
    with the colons exists).
    """
    opts = opts or _Options()
    if root.is_file():
        path = root
    else:
        path = next((p for p in (root / "openasl-v1.0.tsv", root / "data" / "openasl-v1.0.tsv") if p.is_file()),
                    root / "openasl-v1.0.tsv")
    clips = opts.video_root or path.parent / "clips"
    wanted, ids, out = set(splits), _Ids(), []
    for line, row in _rows(path, "\t", ("vid", "yid", "raw-text", "split"), quoting=True):
        vid = row["vid"].strip()
        split = _split(row["split"], path, line, "split")
        ids.add(vid, split, path, line, "vid")
        if split in wanted:
            video = clips / f"{vid}.mp4"
            if not video.exists():
                video = clips / f"{vid.replace(':', '%')}.mp4"
            out.append(SignSample(id=vid, split=split, lang="en", text=_text(row["raw-text"]),
                                  video=video, source=f"{path}:{line}"))
    return out


# ---------------------------------------------------------------- GFSLT-VLP / Uni-Sign label files



def _label_files(root: Path) -> dict[str, Path]:
    """{split: file} of `PREFIX.{train,dev,test}` label files (`labels.test`, `labels-2000.dev`)."""
    def split_of(p: Path) -> str | None:
        return _SPLIT_ALIASES.get(p.suffix[1:].lower()) if p.is_file() and p.suffix else None

    if root.is_file():
        if split_of(root) is None:
            raise InputFileError(root, "a label file is named PREFIX.SPLIT (labels.train, labels.dev, labels.test)")
        candidates = [p for p in root.parent.iterdir() if p.stem == root.stem]
    else:
        candidates = [p for p in root.iterdir() if not p.name.startswith(".")]
    by_prefix: dict[str, dict[str, Path]] = {}
    for p in sorted(candidates):
        split = split_of(p)
        if split is not None:
            by_prefix.setdefault(p.stem, {}).setdefault(split, p)
    if not by_prefix:
        raise InputFileError(root, "no label files here (expected labels.train, labels.dev, labels.test)")
    if len(by_prefix) > 1:
        raise InputFileError(root, f"label files of several sets ({', '.join(sorted(by_prefix))}); "
                                   "set data.root to one of the files")
    return next(iter(by_prefix.values()))


def _label_id(key: str, name: str | None) -> str:
    """`dev/NAME` -> `NAME`, `NAME.mp4` -> `NAME` (GFSLT-VLP keys carry the split, Uni-Sign's the suffix)."""
    value = str(name if name is not None else key).strip()
    head, sep, tail = value.partition("/")
    if sep and head.lower() in _SPLIT_ALIASES and tail:
        value = tail
    if value.lower().endswith(_VIDEO_SUFFIXES):
        value = value[: value.rfind(".")]
    return value


def read_labels(root: Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """GFSLT-VLP / Uni-Sign label files: gzip-compressed pickles of `{KEY: {name, text, ...}}`.

    GFSLT-VLP: `KEY = name = "SPLIT/NAME"`, `gloss`, `text`, `length`, `imgs_path` (frame files
    relative to its `img_path`); Uni-Sign: `name`, `gloss`, `text`, `video_path` (relative to its
    `rgb_dir`). A list of such dicts is read too. Frames/videos resolve against `data.video_root`
    (default: the label files' folder). Read through the restricted unpickler: a file holding
    torch tensors (SLRT / Joey NMT feature pickles) or any other object is refused.
    """
    opts = opts or _Options()
    files = _label_files(root)
    wanted, ids, out = set(splits), _Ids(), []
    for split in SPLITS:
        path = files.get(split)
        if path is None or split not in wanted:
            continue
        vroot = opts.video_root or path.parent
        data = _safe_load(path)
        if isinstance(data, dict):
            entries = list(data.items())
        elif isinstance(data, list):
            entries = [(str(e.get("name", i)) if isinstance(e, dict) else str(i), e) for i, e in enumerate(data)]
        else:
            raise InputFileError(path, f"expected a dict of label records, got {type(data).__name__}")
        for key, rec in entries:
            if not isinstance(rec, dict):
                raise InputFileError(path, f"entry {key!r} is a {type(rec).__name__}, not a dict")
            if not isinstance(rec.get("text"), str):
                raise InputFileError(path, f"entry {key!r} has no text string", column="text")
            sample_id = _label_id(str(key), rec.get("name"))
            ids.add(sample_id, split, path, None, "name")
            video, frames = None, rec.get("length", rec.get("num_frames"))
            imgs = rec.get("imgs_path")
            if isinstance(imgs, (list, tuple)) and imgs and isinstance(imgs[0], str):
                video = vroot / Path(imgs[0]).parent
                frames = frames if frames is not None else len(imgs)
            elif isinstance(rec.get("video_path"), str) and rec["video_path"]:
                video = vroot / rec["video_path"]
            text = _text(rec["text"])
            lang = opts.lang or ("zh" if has_chinese(text) else "und")
            out.append(SignSample(
                id=sample_id, split=split, lang=lang, text="".join(text.split()) if lang == "zh" else text,
                video=video, num_frames=int(frames) if isinstance(frames, numbers.Integral) and not isinstance(
                    frames, bool) and frames >= 0 else None,
                signer=str(rec["signer"]) if rec.get("signer") is not None else None, source=f"{path}, entry {key}",
            ))
    return out


# ---------------------------------------------------------------- JSONL manifest


def read_manifest(path: str | Path, splits: Iterable[str] = SPLITS, opts: _Options | None = None) -> list[SignSample]:
    """A JSONL manifest: `id`, `split`, `text`, `lang` and optional `video`, `keypoints`,
    `features` (relative to the manifest's folder), `signer`, `num_frames`.

    A key repeated inside one line (JSON keeps the last silently) is an `InputFileError` naming
    the file, line and key."""
    path = Path(path)
    base = path.parent
    wanted, ids, out = set(splits), _Ids(), []
    with _need_file(path).open(encoding="utf-8-sig") as f:
        for line, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            rec = loads(raw, path, line)  # a key twice in one line: InputFileError naming it
            if not isinstance(rec, dict):
                raise InputFileError(path, "each line must be a JSON object", line)
            for key in ("id", "split", "text", "lang"):
                if not isinstance(rec.get(key), str) or (key != "text" and not rec[key].strip()):
                    problem = f"missing field {key!r}" if key not in rec else f"{key!r} must be a non-empty string"
                    raise InputFileError(path, problem, line, key)
            sample_id = rec["id"].strip()
            split = _split(rec["split"], path, line, "split")
            ids.add(sample_id, split, path, line, "id")
            num_frames = rec.get("num_frames")
            if num_frames is not None and (not isinstance(num_frames, int) or isinstance(num_frames, bool)
                                           or num_frames < 0):
                raise InputFileError(path, f"num_frames must be a non-negative integer, got {num_frames!r}",
                                     line, "num_frames")
            paths = {}
            for key in ("video", "keypoints", "features"):
                value = rec.get(key)
                if value is not None and (not isinstance(value, str) or not value):
                    raise InputFileError(path, f"{key!r} must be a path string", line, key)
                paths[key] = (base / value) if value else None
            if split not in wanted:
                continue
            signer = rec.get("signer")
            out.append(SignSample(
                id=sample_id, split=split, lang=rec["lang"].strip(), text=_text(rec["text"]),
                num_frames=num_frames, signer=str(signer) if signer is not None else None,
                source=f"{path}:{line}", **paths,
            ))
    return out


def _read_manifest_root(root: Path, splits: Iterable[str], opts: _Options | None = None) -> list[SignSample]:
    return read_manifest(root / "manifest.jsonl" if root.is_dir() else root, splits, opts)


READERS: dict[str, Callable[..., list[SignSample]]] = {
    "phoenix2014t": read_phoenix,
    "csl-daily": read_csl_daily,
    "how2sign": read_how2sign,
    "openasl": read_openasl,
    "labels": read_labels,
    "manifest": _read_manifest_root,
}
_KIND_ALIASES = {"phoenix": "phoenix2014t", "phoenix-2014t": "phoenix2014t", "phoenix14t": "phoenix2014t",
                 "csl_daily": "csl-daily", "csldaily": "csl-daily", "csl": "csl-daily", "jsonl": "manifest",
                 "gfslt": "labels", "gfslt-vlp": "labels", "uni-sign": "labels", "unisign": "labels"}
_VIDEO_ROOT_KINDS = ("openasl", "labels")


def dataset_kind(kind: str) -> str:
    """The canonical name of a dataset kind (`phoenix` -> `phoenix2014t`); RvlfError if unknown."""
    key = kind.strip().lower()
    key = _KIND_ALIASES.get(key, key)
    if key not in READERS:
        raise RvlfError(f"unknown dataset kind {kind!r} (expected one of: {', '.join(READERS)})")
    return key


def read_dataset(kind: str, root: str | Path, splits: Iterable[str] | None = None, *,
                 video_root: str | Path | None = None, lang: str | None = None,
                 notes: ReadNotes | None = None) -> list[SignSample]:
    """All samples of `kind` (see the table above) under `root`, restricted to `splits`.

    `video_root`: where OpenASL clips / label files' frame paths are (`data.video_root`).
    `lang`: the language of `labels` files (others know theirs). `notes`: filled with what was
    skipped or unlisted (see `ReadNotes`).
    """
    key = dataset_kind(kind)
    chosen = list(SPLITS) if splits is None else [s.strip().lower() for s in splits]
    bad = [s for s in chosen if s not in SPLITS]
    if bad:
        raise RvlfError(f"unknown split {bad[0]!r} (expected train, dev or test)")
    root = Path(root)
    if not root.exists():
        raise InputFileError(root, f"dataset root not found ({link})" if (link := dangling_link(root))
                             else "dataset root not found")
    if video_root and key not in _VIDEO_ROOT_KINDS:
        raise RvlfError(f"data.video_root applies to {' and '.join(_VIDEO_ROOT_KINDS)} only; "
                        f"{key} videos are where the release keeps them (see docs/datasets.md)")
    opts = _Options(video_root=Path(video_root) if video_root else None, lang=lang or None,
                    notes=notes if notes is not None else ReadNotes())
    return READERS[key](root, chosen, opts)
