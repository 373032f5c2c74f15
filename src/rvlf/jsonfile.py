"""Reading JSON that users write or edit: a key repeated inside one object is an error.

Python's `json` keeps the last of two equal keys without a word (RFC 8259 Sec. 4 leaves it to the
reader), so a manifest line ending `..., "split": "test"}` after its real split would move a train
sample to test silently. Every JSON rvlf reads from users (JSONL manifests, `rvlf_model.json`,
a run's `results.json`, `corpus.json`) goes through `loads` / `read_json`, which raise
`InputFileError` naming the file, line and key instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rvlf.errors import InputFileError


class DuplicateKeyError(ValueError):
    """A key that appears twice in one JSON object (`key`: the key)."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"key {key!r} appears twice in one object")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def loads(text: str, path: str | Path, line: int | None = None) -> Any:
    """`json.loads(text)`, refusing repeated keys; `InputFileError(path, ..., line)` on invalid JSON
    or a repeated key (the line is `line`, or the one the error is on when `text` is a whole file)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKeyError as err:
        if line is None:  # a whole file: the line of the key's second occurrence (where the repeat is)
            hits = [m.start() for m in re.finditer(re.escape(json.dumps(err.key, ensure_ascii=False)) + r"\s*:", text)]
            line = text.count("\n", 0, hits[1]) + 1 if len(hits) > 1 else None
        raise InputFileError(path, f"key {err.key!r} appears twice in one object (JSON keeps the last "
                                   "silently; remove one)", line, err.key) from None
    except json.JSONDecodeError as err:
        msg = err.msg.removesuffix(" at")
        if line is not None:
            raise InputFileError(path, f"invalid JSON: {msg} at character {err.pos + 1}", line) from None
        raise InputFileError(path, f"not valid JSON: {msg} (column {err.colno})", err.lineno) from None


def read_json(path: str | Path) -> Any:
    """A whole JSON file (UTF-8, a BOM allowed), through `loads`. `InputFileError` when it is
    missing, unreadable, not UTF-8, not JSON, or holds a repeated key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except UnicodeDecodeError as err:
        raise InputFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise InputFileError(path, f"cannot read ({err.strerror or err})") from None
    return loads(text, path)
