"""Reading translations: plain sentence files and the `id<TAB>hypothesis<TAB>reference` files of runs.

Every reader decodes UTF-8 with an optional leading BOM (`utf-8-sig`); a UTF-16 file or an invalid
byte is an `InputFileError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from rvlf.errors import InputFileError

UTF8_BOM = b"\xef\xbb\xbf"


def one_line(text: str) -> str:
    """`text` with every run of whitespace (a generated newline or tab too) as one space: one field of
    a tab-separated line (`id<TAB>hypothesis<TAB>reference`, `NAME<TAB>translation`)."""
    return " ".join(text.split())


def read_text(path: str | Path) -> str:
    """The whole file as text: UTF-8, a leading BOM dropped. Raises `InputFileError`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file" if not path.exists() else "not a regular file")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputFileError(path, "is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8", line=1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0)
        line = data[:start].count(b"\n") + 1
        raise InputFileError(path, f"not valid UTF-8 (byte {start})", line=line) from None


def read_lines(path: str | Path) -> list[str]:
    """One sentence a line (a final newline does not start another sentence; `\\r\\n` accepted).

    Lines are split at `\\n` only: U+2028, U+0085 and other Unicode line breaks inside a sentence
    are whitespace to the protocol, not new sentences (so line counts agree with `wc -l`)."""
    lines = read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_sentences(path: str | Path) -> list[str]:
    """`read_lines` for a file of plain sentences (hypotheses or references of `rvlf score` and
    `rvlf compare`). A tab is refused (`InputFileError` naming file and line): such a line is most
    likely a translations `.tsv` row `id<TAB>hypothesis<TAB>reference`, which scored as one sentence
    would hold its own reference."""
    lines = read_lines(path)
    tabbed = next((n for n, line in enumerate(lines, 1) if "\t" in line), None)
    if tabbed is not None:
        raise InputFileError(path, line=tabbed, problem="a tab in the sentence: a translations .tsv "
                             "(ID<TAB>HYPOTHESIS<TAB>REFERENCE)? give plain text, one sentence a line (its "
                             "hypotheses: `cut -f2 FILE`), or name it .tsv for `rvlf compare`, or use "
                             "`rvlf evaluate`; both read .tsv files by id")
    return lines


def read_translations(path: str | Path) -> dict[str, tuple[str, str]]:
    """A run's `test_translations.tsv`: `{id: (hypothesis, reference)}` in file order.

    Each line is `id<TAB>hypothesis<TAB>reference` (`rvlf.train.common.write_translations`; the
    hypothesis may be empty). A line with another number of fields or a repeated id is an
    `InputFileError` naming the file and line."""
    out: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise InputFileError(path, f"expected id<TAB>hypothesis<TAB>reference, found {len(parts)} field(s)",
                                 line=n)
        if parts[0] in out:
            raise InputFileError(path, f"id {parts[0]!r} appears twice", line=n)
        out[parts[0]] = (parts[1], parts[2])
    if not out:
        raise InputFileError(path, "no translations")
    return out
