"""Walking a dataset folder: symbolic links followed, link loops and broken links named.

Datasets on shared storage are often assembled from links (`vid1 -> /mnt/store/vid1`, a split
folder linked from another disk). `os.walk` and, on Python < 3.13, `Path.rglob` do not enter a
linked folder, so its videos would be skipped without a word. `walk` enters every linked folder
(as `find -L` and shell globs do), and instead of looping forever or failing on the first bad
link it records each problem as one line (`TreeProblem`) and carries on:

- a broken link (its target does not exist): `PATH: broken symbolic link (-> TARGET)`;
- a link loop (a folder that contains itself through a link): `PATH: symbolic link loop
  (-> TARGET, which is already PATH_ABOVE)`; the folder is not entered a second time.

Hidden entries (names starting with `.`, e.g. macOS `._` files) are skipped.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TreeProblem:
    """A link `walk` could not follow: `path` (as found in the tree), what is wrong, and its kind:
    `broken` (a link to nothing), `loop` (nothing is lost: the folder was walked already) or
    `unreadable` (a folder that cannot be listed, a file that cannot be stat'ed)."""

    path: Path
    problem: str
    kind: str = "broken"

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def walk(root: str | Path, problems: list[TreeProblem] | None = None) -> Iterator[tuple[Path, list[str], list[str]]]:
    """(folder, sub-folder names, file names) for `root` and every folder below it, top-down, names
    sorted, hidden ones left out; linked folders and files are followed. Each broken link and link
    loop is appended to `problems` (see the module docstring) and left out of the names."""
    root = Path(root)
    problems = problems if problems is not None else []
    try:
        st = root.stat()
    except OSError:
        if root.is_symlink():
            problems.append(TreeProblem(root, f"broken symbolic link (-> {_target(root)})"))
        return
    yield from _walk(root, {(st.st_dev, st.st_ino): root}, problems)


def _walk(folder: Path, above: dict[tuple[int, int], Path], problems: list[TreeProblem]
          ) -> Iterator[tuple[Path, list[str], list[str]]]:
    dirs: list[tuple[str, tuple[int, int]]] = []
    files: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        problems.append(TreeProblem(folder, f"cannot list this folder ({err.strerror or err})", "unreadable"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as err:
            if entry.is_symlink():
                loop = err.errno == errno.ELOOP
                problems.append(TreeProblem(path, f"{'symbolic link loop' if loop else 'broken symbolic link'} "
                                                  f"(-> {_target(path)})", "loop" if loop else "broken"))
            else:
                problems.append(TreeProblem(path, f"cannot read ({err.strerror or err})", "unreadable"))
            continue
        if entry.is_dir(follow_symlinks=True):
            key = (st.st_dev, st.st_ino)
            if key in above:
                problems.append(TreeProblem(path, f"symbolic link loop (-> {_target(path)}, which is already "
                                                  f"{above[key]}); not entered again", "loop"))
                continue
            dirs.append((entry.name, key))
        else:
            files.append(entry.name)
    yield folder, [d for d, _ in dirs], files
    for name, key in dirs:
        yield from _walk(folder / name, {**above, key: folder / name}, problems)


def files_under(root: str | Path, suffix: str, problems: list[TreeProblem] | None = None) -> list[Path]:
    """Every non-hidden file under `root` whose name ends with `suffix` (case-insensitive), links
    followed (`walk`), in walk order."""
    return [folder / f for folder, _, names in walk(root, problems) for f in names
            if f.lower().endswith(suffix.lower())]


def dangling_link(path: str | Path) -> str | None:
    """Why `path` cannot be reached when a symbolic link on the way is at fault, else None:
    `broken symbolic link LINK (-> TARGET)` or `symbolic link loop at LINK (-> TARGET)` for the
    outermost such link among `path` and its parent folders (a file found missing, named)."""
    path = Path(path)
    if os.path.exists(path):
        return None
    for here in [*reversed(path.parents), path]:
        if os.path.islink(here) and not os.path.exists(here):
            try:
                os.stat(here)
            except OSError as err:
                what = "symbolic link loop at" if err.errno == errno.ELOOP else "broken symbolic link"
                return f"{what} {here} (-> {_target(here)})"
    return None
