"""Writing outputs so that nothing is lost: per-process temporary names, atomic renames, and one
clear error line when the disk says no.

Every output rvlf writes (checkpoints, exports, feature files, results, reports, translations)
goes to a temporary name in the destination folder first and is renamed into place once
complete, so a kill or a full disk leaves the previous file (or folder) untouched and nothing
partial under the final name. Temporary names carry the writer's pid and host
(`.<name>.tmp-<pid>@<host>-<random>`): a writer removes the leftovers of *dead* processes on
its own host only, never a live process's write in progress.

Files: `write_file` / `write_text`. Folders: `write_dir` (fill a temporary folder, then
`replace_dir`), or `make_temp_dir` + `replace_dir` by hand. `replace_dir` swaps the finished
folder in with one atomic exchange where the OS has it (Linux `renameat2(RENAME_EXCHANGE)`), else
with two renames, the old folder parked meanwhile: under a temporary name (the next writer removes
it) or under a name the caller gives (`<dir>.old` for checkpoints), which a reader puts back with
`restore_parked` if a kill came between the two renames.

OS errors while writing (ENOSPC, EROFS, EACCES, EDQUOT, ... also when safetensors wraps them in
its `SafetensorError "... (os error 28)"`) become `rvlf.errors.WriteError`: one line naming the
path and the OS error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rvlf.errors import WriteError

_OS_ERROR_IN_TEXT = re.compile(r"\(os error (\d+)\)")
_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")
_TEMP_TAG = re.compile(r"\.tmp-(\d+)@([A-Za-z0-9_.-]*)-")


def host() -> str:
    """This machine's name as it appears in temporary names and run-folder locks."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "localhost"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def os_error_of(err: BaseException) -> OSError | None:
    """The OS error behind `err`: itself, the `(os error N)` safetensors puts in its message, or the
    first `[Errno N]` of a `shutil.Error` (copytree)."""
    if isinstance(err, OSError) and err.errno is not None:
        return err
    match = _OS_ERROR_IN_TEXT.search(str(err))
    if match and type(err).__name__ == "SafetensorError":
        code = int(match.group(1))
        return OSError(code, os.strerror(code))
    match = _ERRNO_IN_TEXT.search(str(err))
    if match and isinstance(err, shutil.Error):  # copytree collects its files' errors into one
        code = int(match.group(1))
        return OSError(code, os.strerror(code))
    return None


def write_error(err: BaseException, path: str | Path, what: str, kept: str = "") -> WriteError | None:
    """`WriteError` "PATH: cannot write WHAT: <OS error> (errno NAME)[; KEPT]" for an OS-level write
    failure, else None (the caller re-raises `err`)."""
    os_err = os_error_of(err)
    if os_err is None:
        return None
    blocker = file_in_the_way(path) if os_err.errno in (errno_mod.EEXIST, errno_mod.ENOTDIR) else None
    # mkdir under a file says only "File exists (EEXIST)" / "Not a directory": name the file instead
    reason = f"{blocker} is a file, not a folder" if blocker else describe(os_err)
    text = f"{path}: cannot write {what}: {reason}"
    return WriteError(text + (f"; {kept}" if kept else ""))


def file_in_the_way(path: str | Path) -> Path | None:
    """The nearest existing parent folder of `path` when it is a file (or a link to one), else None."""
    for parent in Path(path).parents:
        if parent.exists() or parent.is_symlink():
            return None if parent.is_dir() else parent
    return None


def describe(os_err: OSError) -> str:
    """The OS's words and the errno name: "No space left on device (ENOSPC)"."""
    name = errno_mod.errorcode.get(os_err.errno, str(os_err.errno))
    return f"{os_err.strerror or os.strerror(os_err.errno)} ({name})"


@contextlib.contextmanager
def reported_write(path: str | Path, what: str, kept: str = "") -> Iterator[None]:
    """Turn an OS-level write failure inside the block into `WriteError` naming `path`."""
    try:
        yield
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001 - only OS errors are converted, the rest re-raised as is
        mapped = write_error(err, path, what, kept)
        if mapped is None:
            raise
        raise mapped from err


def temp_prefix(name: str) -> str:
    """`.<name>.tmp-<pid>@<host>-`: the prefix of this process's temporary copies of `name`."""
    return f".{name}.tmp-{os.getpid()}@{host()}-"


def is_stale(temp: Path) -> bool:
    """A temporary entry (`temp_prefix`) whose writer is dead: same host and pid gone, or a name
    without the pid tag (written by an rvlf before it had one)."""
    match = _TEMP_TAG.search(temp.name)
    if match is None:
        return True
    pid, where = int(match.group(1)), match.group(2)
    return where == host() and pid != os.getpid() and not pid_alive(pid)


def clean_stale_temps(parent: str | Path, name: str) -> list[Path]:
    """Remove the temporary copies of `parent/name` left by dead processes; returns them."""
    removed = []
    parent = Path(parent)
    if not parent.is_dir():
        return removed
    for temp in parent.glob(f".{glob_escape(name)}.tmp-*"):
        if is_stale(temp):
            _remove(temp)
            removed.append(temp)
    return removed


def _remove(path: Path) -> None:
    """Remove a folder tree, or a file or link (never what a link points to); quietly."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def make_temp_dir(final: str | Path) -> Path:
    """A new, empty temporary folder beside `final`, named for this process."""
    final = Path(final)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(final.name), dir=final.parent))


def write_file(path: str | Path, write: Callable[[Path], None], what: str = "the file") -> Path:
    """Write `path` atomically: `write(tmp)` fills a temporary file beside it, which is flushed to
    disk and renamed onto `path`. On any failure the temporary file is removed and `path` is left as
    it was; an OS error (disk full, read-only, permission) raises `WriteError` naming `path`."""
    path = Path(path)
    with reported_write(path, what, "the previous file, if any, is unchanged"):
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent, path.name)
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str, what: str = "the file", encoding: str = "utf-8") -> Path:
    """`write_file` for text."""
    return write_file(path, lambda tmp: tmp.write_text(text, encoding=encoding), what)


def write_dir(final: str | Path, fill: Callable[[Path], None], what: str = "the folder",
              kept: str = "the previous folder, if any, is unchanged", *, old: str | Path | None = None) -> Path:
    """Write the folder `final` atomically: `fill(tmp)` fills a new temporary folder beside it
    (`make_temp_dir`; dead processes' leftovers are removed first), whose files are flushed to disk
    and which then replaces `final` (`replace_dir`, `old` as there). On any failure the temporary
    folder is removed and `final` is left as it was; an OS error (disk full, read-only, permission,
    a file where the folder should be) raises `WriteError` "FINAL: cannot write WHAT: ...; KEPT"."""
    final = Path(final)
    with reported_write(final, what, kept):
        final.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(final.parent, final.name)
        tmp = make_temp_dir(final)
        try:
            fill(tmp)
            replace_dir(tmp, final, old=old)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def replace_dir(tmp: str | Path, final: str | Path, *, old: str | Path | None = None, sync: bool = True) -> None:
    """Put the finished folder `tmp` (beside `final`, same file system) at `final`, replacing the
    folder there if any; `tmp` is gone afterwards.

    With `sync`, the files under `tmp` are flushed to disk first and the parent folder after, so
    a power cut never leaves the new name with unwritten files. Where the OS has an atomic exchange
    (`exchange`) `final` always holds a complete folder. Elsewhere two renames: the old folder is
    parked at `old` (default: `<tmp>.old`, a temporary name that the next writer's
    `clean_stale_temps` removes; a caller whose readers must find the previous folder after a kill
    between the two renames gives its own, e.g. `<final>.old`, and reads through `restore_parked`),
    then `tmp` takes its place and the parked folder is removed; a folder left at `old` by a kill is
    removed once `final` holds the new one. Raises `NotADirectoryError` (ENOTDIR) when `final` exists and is not a
    folder (it is left alone), OSError from the renames.
    """
    tmp, final = Path(tmp), Path(final)
    old = tmp.with_name(tmp.name + ".old") if old is None else Path(old)  # not "-old": the tag ends at the last "-"
    if os.path.lexists(final) and not final.is_dir():
        raise NotADirectoryError(errno_mod.ENOTDIR, os.strerror(errno_mod.ENOTDIR), str(final))
    if sync:
        _fsync_files(tmp)
    if final.is_dir() and exchange(tmp, final):
        _remove(tmp)  # now the previous folder, under the temporary name
    else:
        if os.path.lexists(final):
            if os.path.lexists(old):
                _remove(old)  # left by a writer killed after its second rename: `final` is complete
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old, final)  # the previous folder back where it was
                raise
        else:
            os.replace(tmp, final)  # (a folder parked by a kill between the renames stays until `final` is new)
    if os.path.lexists(old):
        _remove(old)
    if sync:
        _fsync_dir_entry(final.parent)


def restore_parked(old: str | Path, final: str | Path) -> bool:
    """Undo a kill between `replace_dir`'s two renames: put the folder parked at `old` back at `final`
    when `final` is missing. True when `final` exists afterwards (put back here or by a rival reader)."""
    old, final = Path(old), Path(final)
    if not final.exists() and old.is_dir():
        with contextlib.suppress(OSError):  # another process put it back first
            os.replace(old, final)
    return final.exists()


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where the OS,
    C library or file system has no such call (the caller falls back to two renames)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _fsync_dir_entry(folder: Path) -> None:
    """Flush a folder's entries (a rename in it); a file system that cannot is left as it is."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
