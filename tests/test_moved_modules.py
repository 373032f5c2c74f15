"""Modules that moved into packages in issue 32 still import from their old paths, as the same module,
with one FutureWarning naming the new path; the public API and the CLI are unchanged."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

import rvlf

SCRIPT = r"""
import importlib, warnings, rvlf
from rvlf import MOVED
out = []
for old, new in sorted(MOVED.items()):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = importlib.import_module(old)
        b = importlib.import_module(old)  # a second import warns no more
    moved = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    out.append((old, a is importlib.import_module(new), a.__name__, moved))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from rvlf import SignTranslator, Hypothesis
    from rvlf.inference.api import SignTranslator as new_path
print(repr((out, SignTranslator is new_path, Hypothesis.__module__, [str(w.message) for w in caught])))
"""


def _run(code: str):
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr of plain values


def test_old_paths_are_the_new_modules_with_one_warning_each():
    moved, same_class, module, warned = _run(SCRIPT)
    assert len(moved) == len(rvlf.MOVED) == 12
    for old, same, name, messages in moved:
        assert same and name == rvlf.MOVED[old], old
        assert messages == [f"{old} has moved to {rvlf.MOVED[old]}; import it from there (the old path will be removed)"]
    assert same_class and module == "rvlf.inference.api" and warned == []  # the public API does not warn


def test_from_import_of_an_old_name_and_a_moved_function():
    code = ("import warnings; warnings.simplefilter('error', FutureWarning)\n"
            "try:\n    from rvlf.translate import decode\nexcept FutureWarning as w:\n    print(repr(str(w)))\n")
    assert _run(code) == "rvlf.translate has moved to rvlf.inference.pipeline; import it from there (the old path will be removed)"


def test_no_module_is_left_at_an_old_path():
    src = REPO / "src"
    for old in rvlf.MOVED:
        path = src.joinpath(*old.split("."))
        assert not path.with_suffix(".py").exists() and not path.is_dir(), old


def test_renamed_functions_of_the_old_path_still_import_with_their_new_name():
    # `rvlf.translate.translate()` became `decode()`, its overlay drawing moved to rvlf.inference.overlay:
    # old code gets the new function and one FutureWarning naming it, not an ImportError
    code = ("import warnings\nwith warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    from rvlf.translate import translate, draw_overlay\n"
            "from rvlf.inference.pipeline import decode\nfrom rvlf.inference.overlay import draw_overlay as new\n"
            "import rvlf.inference.pipeline as p\n"
            "try:\n    p.no_such_name\n    missing = None\nexcept AttributeError as e:\n    missing = str(e)\n"
            "print(repr((translate is decode, draw_overlay is new, [str(w.message) for w in caught], missing)))\n")
    same, same_overlay, messages, missing = _run(code)
    assert same and same_overlay
    assert messages[1:] == [
        "rvlf.translate.translate is now rvlf.inference.pipeline.decode (same arguments); import it from there "
        "(the old name will be removed)",
        "rvlf.translate.draw_overlay is now rvlf.inference.overlay.draw_overlay (same arguments); import it from "
        "there (the old name will be removed)"]
    assert missing == "module 'rvlf.inference.pipeline' has no attribute 'no_such_name'"
