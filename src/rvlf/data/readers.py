"""Dataset annotations -> `SignSample` records (Sec. 4.1's four corpora and a JSONL manifest).

Each reader takes the dataset's root folder as distributed (layouts below) and returns samples
for the splits `train`, `dev`, `test` (How2Sign's `val` and OpenASL's `valid` become `dev`).
`video` points where the release keeps the clip or frame folder; it is not checked here
(`rvlf data check` does). A missing file, a missing column, an empty text or a duplicate id
raises `InputFileError` naming the file, line and column.

| kind | annotation files under ROOT | video |
| --- | --- | --- |
| `phoenix2014t` | `[annotations/manual/]PHOENIX-2014-T.{train,dev,test}.corpus.csv` (`|`-separated) | `features/fullFrame-210x260px/SPLIT/NAME/` |
| `csl-daily` | `sentence_label/csl2020ct_v2.pkl`, `sentence_label/split_1.txt` | `sentence/frames_512x512/NAME/` |
| `how2sign` | `how2sign_realigned_{train,val,test}.csv` (tab-separated) | `SPLIT_rgb_front_clips/raw_videos/SENTENCE_NAME.mp4` |
| `openasl` | `openasl-v1.0.tsv` | `clips/VID.mp4` |
| `manifest` | a `.jsonl` file (or `ROOT/manifest.jsonl`), see docs/architecture.md | as given |
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rvlf.data.safe_pickle import safe_load
from rvlf.errors import InputFileError, RvlfError

SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}


@dataclass
class SignSample:
    """One sentence-level sign video with its translation; paths are absolute or None."""

    id: str
    split: str
    text: str
    lang: str
    video: Path | None = None
    keypoints: Path | None = None
    features: Path | None = None
    num_frames: int | None = None
    signer: str | None = None


class _Ids:
    """Rejects a repeated id, pointing at both occurrences."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, sample_id: str, path: Path, line: int | None, column: str) -> None:
        where = f"{path.name}:{line}" if line is not None else path.name
        if sample_id in self.seen:
            raise InputFileError(path, f"duplicate id {sample_id!r} (first at {self.seen[sample_id]})", line, column)
        self.seen[sample_id] = where


def _split(value: str, path: Path, line: int | None, column: str) -> str:
    split = _SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        raise InputFileError(path, f"unknown split {value!r} (expected train, dev or test)", line, column)
    return split


def _need_file(path: Path) -> Path:
    if not path.is_file():
        raise InputFileError(path, "file not found")
    return path


def _rows(path: Path, delimiter: str, columns: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a delimited text file with a header; checks columns and widths."""
    with _need_file(path).open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE)
        header = [h.strip() for h in next(reader, [])]
        for col in columns:
            if col not in header:
                raise InputFileError(path, f"missing column {col!r} (header: {delimiter.join(header)})", 1, col)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InputFileError(path, f"{len(row)} fields, the header has {len(header)}", reader.line_num)
            yield reader.line_num, dict(zip(header, row))


def _text(value: str, path: Path, line: int | None, column: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise InputFileError(path, "empty text", line, column)
    return text


def read_phoenix(root: Path, splits: Iterable[str] = SPLITS) -> list[SignSample]:
    """RWTH-PHOENIX-Weather-2014T (German): `name|video|start|end|speaker|orth|translation`."""
    folder = root / "annotations" / "manual"
    folder = folder if folder.is_dir() else root
    ids, out = _Ids(), []
    for split in splits:
        path = folder / f"PHOENIX-2014-T.{split}.corpus.csv"
        for line, row in _rows(path, "|", ("name", "video", "speaker", "translation")):
            name = row["name"].strip()
            ids.add(name, path, line, "name")
            out.append(SignSample(
                id=name, split=split, lang="de",
                text=_text(row["translation"], path, line, "translation"),
                video=root / "features" / "fullFrame-210x260px" / split / name,
                signer=row["speaker"].strip() or None,
            ))
    return out


def read_csl_daily(root: Path, splits: Iterable[str] = SPLITS) -> list[SignSample]:
    """CSL-Daily (Chinese): `csl2020ct_v2.pkl` (`info` entries) and `split_1.txt` (`name|split`)."""
    label_dir = root / "sentence_label"
    pkl = _need_file(label_dir / "csl2020ct_v2.pkl")
    data = safe_load(pkl)
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

    wanted, ids, out = set(splits), _Ids(), []
    split_file = label_dir / "split_1.txt"
    for line, row in _rows(split_file, "|", ("name", "split")):
        name, split = row["name"].strip(), _split(row["split"], split_file, line, "split")
        ids.add(name, split_file, line, "name")
        if split not in wanted:
            continue
        entry = info.get(name)
        if entry is None:
            raise InputFileError(split_file, f"{name!r} is not in {pkl.name}", line, "name")
        chars = entry["label_char"]
        text = "".join(chars) if isinstance(chars, (list, tuple)) else str(chars)
        if not text.strip():
            raise InputFileError(pkl, f"empty text for {name!r}", column="label_char")
        length = entry.get("length")
        out.append(SignSample(
            id=name, split=split, lang="zh", text="".join(text.split()),
            video=root / "sentence" / "frames_512x512" / name,
            num_frames=int(length) if length is not None else None,
            signer=str(entry["signer"]) if entry.get("signer") is not None else None,
        ))
    return out


def read_how2sign(root: Path, splits: Iterable[str] = SPLITS) -> list[SignSample]:
    """How2Sign (English): `how2sign_realigned_{train,val,test}.csv`, tab-separated."""
    ids, out = _Ids(), []
    for split in splits:
        tag = "val" if split == "dev" else split
        path = root / f"how2sign_realigned_{tag}.csv"
        for line, row in _rows(path, "\t", ("VIDEO_ID", "SENTENCE_NAME", "SENTENCE")):
            name = row["SENTENCE_NAME"].strip()
            ids.add(name, path, line, "SENTENCE_NAME")
            out.append(SignSample(
                id=name, split=split, lang="en",
                text=_text(row["SENTENCE"], path, line, "SENTENCE"),
                video=root / f"{tag}_rgb_front_clips" / "raw_videos" / f"{name}.mp4",
            ))
    return out


def read_openasl(root: Path, splits: Iterable[str] = SPLITS) -> list[SignSample]:
    """OpenASL (English): `openasl-v1.0.tsv` with `vid, yid, start, end, raw-text, ..., split`."""
    path = root / "openasl-v1.0.tsv"
    wanted, ids, out = set(splits), _Ids(), []
    for line, row in _rows(path, "\t", ("vid", "yid", "raw-text", "split")):
        vid = row["vid"].strip()
        ids.add(vid, path, line, "vid")
        split = _split(row["split"], path, line, "split")
        if split in wanted:
            out.append(SignSample(
                id=vid, split=split, lang="en",
                text=_text(row["raw-text"], path, line, "raw-text"),
                video=root / "clips" / f"{vid}.mp4",
            ))
    return out


def read_manifest(path: str | Path, splits: Iterable[str] = SPLITS) -> list[SignSample]:
    """A JSONL manifest: `id`, `split`, `text`, `lang` and optional `video`, `keypoints`,
    `features` (relative to the manifest's folder), `signer`, `num_frames`."""
    path = Path(path)
    base = path.parent
    wanted, ids, out = set(splits), _Ids(), []
    with _need_file(path).open(encoding="utf-8-sig") as f:
        for line, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as err:
                raise InputFileError(path, f"invalid JSON ({err.msg} at character {err.pos + 1})", line) from None
            if not isinstance(rec, dict):
                raise InputFileError(path, "each line must be a JSON object", line)
            for key in ("id", "split", "text", "lang"):
                if not isinstance(rec.get(key), str) or (key != "text" and not rec[key].strip()):
                    problem = f"missing field {key!r}" if key not in rec else f"{key!r} must be a non-empty string"
                    raise InputFileError(path, problem, line, key)
            sample_id = rec["id"].strip()
            ids.add(sample_id, path, line, "id")
            split = _split(rec["split"], path, line, "split")
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
            text = _text(rec["text"], path, line, "text")
            if split not in wanted:
                continue
            signer = rec.get("signer")
            out.append(SignSample(
                id=sample_id, split=split, lang=rec["lang"].strip(), text=text,
                num_frames=num_frames, signer=str(signer) if signer is not None else None, **paths,
            ))
    return out


def _read_manifest_root(root: Path, splits: Iterable[str]) -> list[SignSample]:
    return read_manifest(root / "manifest.jsonl" if root.is_dir() else root, splits)


READERS: dict[str, Callable[[Path, Iterable[str]], list[SignSample]]] = {
    "phoenix2014t": read_phoenix,
    "csl-daily": read_csl_daily,
    "how2sign": read_how2sign,
    "openasl": read_openasl,
    "manifest": _read_manifest_root,
}
_KIND_ALIASES = {"phoenix": "phoenix2014t", "phoenix-2014t": "phoenix2014t", "phoenix14t": "phoenix2014t",
                 "csl_daily": "csl-daily", "csldaily": "csl-daily", "csl": "csl-daily", "jsonl": "manifest"}


def read_dataset(kind: str, root: str | Path, splits: Iterable[str] | None = None) -> list[SignSample]:
    """All samples of `kind` (see the table above) under `root`, restricted to `splits`."""
    key = kind.strip().lower()
    key = _KIND_ALIASES.get(key, key)
    if key not in READERS:
        raise RvlfError(f"unknown dataset kind {kind!r} (expected one of: {', '.join(READERS)})")
    chosen = list(SPLITS) if splits is None else [s.strip().lower() for s in splits]
    bad = [s for s in chosen if s not in SPLITS]
    if bad:
        raise RvlfError(f"unknown split {bad[0]!r} (expected train, dev or test)")
    root = Path(root)
    if not root.exists():
        raise InputFileError(root, "dataset root not found")
    return READERS[key](root, chosen)
