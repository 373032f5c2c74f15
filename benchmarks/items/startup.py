"""11. Start-up of each `rvlf` command without bytecode, this checkout against a baseline commit. See
benchmarks/README.md."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import FIXTURES, REPO, Row, Section, Sizes

# the commit before the start-up work (imports deferred, tests/test_startup.py); RVLF_BENCH_BASELINE overrides it
BASELINE = os.environ.get("RVLF_BENCH_BASELINE", "b1a5ba3")
HEAVY = ("torch", "transformers", "peft", "accelerate", "cv2", "mediapipe", "gradio", "matplotlib", "av",
         "sacrebleu", "numpy")
# what each run does: print sys.modules' top-level packages on stderr after main(argv)
WRAP = ("import sys\n"
        "from rvlf.cli import main\n"
        "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})) + '\\n')\n")


def same_as_help() -> set[str]:
    """Sub-command --help rows whose baseline is not run again: the baseline's `build_parser` imported every
    command module for any `--help`, so each cost what `rvlf --help` cost (score and translate are kept
    as a check)."""
    from rvlf.cli import COMMANDS

    return {f"rvlf {c.replace('_', '-')} --help" for c in COMMANDS if c not in ("score", "translate")}


SAME_AS_HELP: set[str] = set()


def commands(tmp: Path, checkpoint: Path | None = None) -> dict[str, list[str]]:
    hyp, ref = tmp / "hyp.txt", tmp / "ref.txt"
    hyp.write_text("the cat sits on the mat\na dog runs home\n", encoding="utf-8")
    ref.write_text("the cat sat on the mat\na dog runs away\n", encoding="utf-8")
    from rvlf.cli import COMMANDS

    out = {"rvlf --help": ["--help"]}
    out |= {f"rvlf {c.replace('_', '-')} --help": [c.replace("_", "-"), "--help"] for c in COMMANDS}
    out |= {
        "rvlf score (2 sentences)": ["score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en"],
        "rvlf compare (2 sentences, 100 resamples)": ["compare", "--baseline", str(hyp), "--system", str(ref),
                                                       "--ref", str(ref), "--lang", "en", "--resamples", "100"],
        "rvlf data check (How2Sign annotations)": ["data", "check", "--dataset", "how2sign", "--root",
                                                   str(FIXTURES / "real_formats" / "how2sign")],
        "rvlf plan-memory (paper PHOENIX SFT)": ["plan-memory", "--config",
                                                 str(REPO / "configs" / "paper" / "phoenix" / "sft.yaml")],
    }
    if checkpoint is not None:
        out["rvlf translate (a .pose file, tiny SFT checkpoint)"] = [
            "translate", str(FIXTURES / "holistic_97frames.pose"), "--checkpoint", str(checkpoint), "--num-beams", "2"]
    return out


def tiny_checkpoint(root: Path) -> Path:
    """The tests' tiny SFT run (`tests/conftest.py: tiny_runs`): its last checkpoint."""
    import contextlib
    import io

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_runs  # noqa: E402

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        _, _, sft = tiny_runs(root, sft_steps=2)
    return sft / "last"


def start(src: Path, argv: list[str]) -> tuple[float, float, int, list[str]]:
    """Wall and CPU (user + system) seconds of one fresh interpreter running `rvlf ARGV` from `src`,
    with no bytecode read or written (an empty PYTHONPYCACHEPREFIX: nothing of the venv's __pycache__
    is found); its exit code; the heavy packages it imported."""
    with tempfile.TemporaryDirectory(prefix="rvlf-pyc-") as pyc:
        env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=pyc,
                   HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        u0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        r = subprocess.run([sys.executable, "-c", WRAP, *argv], env=env, capture_output=True, text=True, cwd=REPO)
        seconds, u1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    mods = next((line.split()[1:] for line in r.stderr.splitlines() if line.startswith("MODULES")), [])
    return seconds, cpu, r.returncode, [h for h in HEAVY if h in mods]


def baseline_src(tmp: Path) -> Path | None:
    """`src/` of the baseline commit, unpacked from git into `tmp`; None without git or the commit."""
    try:
        blob = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE, "src"], capture_output=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=blob, check=True)
    return tmp / "src"


def run(sizes: Sizes, ctx: dict) -> Section:
    sec = Section("11. Start-up of each command, no bytecode (this checkout and the baseline commit)")
    with tempfile.TemporaryDirectory(prefix="rvlf-startup-") as tmp:
        tmp = Path(tmp)
        (tmp / "base").mkdir()
        base = baseline_src(tmp / "base")
        todo = commands(tmp, None if sizes.quick else tiny_checkpoint(tmp / "tiny"))
        SAME_AS_HELP.update(same_as_help())
        if sizes.quick:
            todo = {k: v for k, v in todo.items() if k in ("rvlf --help", "rvlf score --help",
                                                           "rvlf score (2 sentences)")}
        runs = max(1, min(sizes.runs, 2))  # each is a fresh interpreter: minutes in all
        for name, argv in todo.items():
            now, cpu, before, cpu_before, heavy, heavy_before, codes = [], [], [], [], [], [], set()
            for _ in range(runs):  # interleaved: the machine's load changes both alike
                s, c, rc, heavy = start(REPO / "src", argv)
                now.append(s), cpu.append(c), codes.add(rc)
                if base is not None and name not in SAME_AS_HELP:
                    s, c, _, heavy_before = start(base, argv)
                    before.append(s), cpu_before.append(c)
            if codes - {0}:
                raise RuntimeError(f"{name}: exit code {sorted(codes)}")
            sec.rows.append(Row(name, now, "s", "imports " + (", ".join(heavy) or "none of " + "/".join(HEAVY[:8]))))
            sec.rows.append(Row("  its CPU time", cpu, "s", "user + system"))
            if base is not None and name not in SAME_AS_HELP:
                sec.rows.append(Row(f"  baseline {BASELINE}", before, "s", "imports " + (", ".join(heavy_before)
                                                                                      or "none")))
                sec.rows.append(Row("  baseline CPU time", cpu_before, "s"))
                sec.rows.append(Row("  baseline / now (wall)", [b / a for a, b in zip(now, before)], "x"))
    sec.notes.append(
        f"Each figure is one fresh `python -c 'from rvlf.cli import main; main(ARGV)'` from `src/` of this checkout, "
        f"and of commit {BASELINE} (`git archive`, the code before the imports were deferred; "
        "`RVLF_BENCH_BASELINE=REF` picks another) right after it, with `PYTHONDONTWRITEBYTECODE=1` and "
        "`PYTHONPYCACHEPREFIX` set to an empty folder: no `.pyc` is read or written, for rvlf, the venv's "
        "libraries and the standard library alike, as after `pip install --no-compile` in a container. "
        "The baseline of a sub-command's `--help` is run for `score` and `translate` only: its `build_parser` "
        "imported every command module for any `--help`, so the others cost what `rvlf --help` cost. "
        f"{max(1, min(sizes.runs, 2))} runs each, no warm-up (a warm-up would change nothing: nothing is "
        "cached but the OS's file cache). CPU time (the child's user + system seconds, `getrusage`) is what a "
        "loaded machine inflates least; wall time on an idle machine is close to it. 'imports' lists the heavy "
        "packages in `sys.modules` after the command.")
    return sec
