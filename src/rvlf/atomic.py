"""Writing outputs so that nothing is lost: per-process temporary names, atomic renames, and one
clear error line when the disk says no.

Every output rvlf writes (checkpoints, exports, feature files, results, reports, translations)
goes to a temporary name in the destination folder first and is renamed into place once
complete, so a kill or a full disk leaves the previous file (or folder) untouched and nothing
partial under the final name. Temporary names carry the writer's pid and host
(`.<name>.tmp-<pid>@<host>-<random>`): a writer removes the leftovers of *dead* processes on
its own host only, never a live process's write in progress.

OS errors while writing (ENOSPC, EROFS, EACCES, EDQUOT, ... also when safetensors wraps them in
its `SafetensorError "... (os error 28)"`) become `rvlf.errors.WriteError`: one line naming the
path and the OS error.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import re
import shutil
import socket
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
    text = f"{path}: cannot write {what}: {describe(os_err)}"
    return WriteError(text + (f"; {kept}" if kept else ""))


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
            if temp.is_dir() and not temp.is_symlink():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


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
