"""Start-up: which libraries each command imports (behaviour, not time; the times are in benchmarks/).

Each check runs the CLI in a fresh interpreter and reads `sys.modules` afterwards: `rvlf --help`, every
sub-command's `--help` and the commands that need no model (`score`, `compare`, `report`, `data check`
of annotations) load none of torch, transformers, peft, OpenCV, MediaPipe, Gradio or Matplotlib;
`plan-memory` builds its models on the meta device with torch and transformers only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import FIXTURES, REPO

HEAVY = ("torch", "transformers", "peft", "accelerate", "trl", "cv2", "mediapipe", "gradio", "matplotlib", "av",
         "sacrebleu", "scipy")


def cli_modules(*argvs: list[str]) -> tuple[set[str], list[tuple[int, str]]]:
    """Run `rvlf.cli.main(argv)` for each argv in one fresh interpreter; (top-level packages imported
    afterwards, [(exit code, stderr tail)] per argv)."""
    script = (
        "import contextlib, io, json, sys\n"
        "from rvlf.cli import main\n"
        "results = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            rc = main(argv)\n"
        "        except SystemExit as e:\n"
        "            rc = e.code\n"
        "    results.append((rc, err.getvalue()[-300:]))\n"
        "print(json.dumps({'modules': sorted({m.split('.')[0] for m in sys.modules}), 'results': results}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", script, json.dumps(list(argvs))], capture_output=True, text=True,
                         env=env, cwd=REPO, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return set(data["modules"]), [tuple(r) for r in data["results"]]


def test_help_of_every_command_imports_no_heavy_library():
    from rvlf.cli import COMMANDS

    argvs = [["--help"]] + [[name.replace("_", "-"), "--help"] for name in COMMANDS] + [["data", "check", "--help"]]
    modules, results = cli_modules(*argvs)
    assert all(rc == 0 for rc, _ in results), results
    assert not modules & set(HEAVY + ("numpy", "yaml")), sorted(modules & set(HEAVY + ("numpy", "yaml")))


def test_light_commands_do_their_work_without_torch_or_video_libraries(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("the cat sits\na dog runs home\n", encoding="utf-8")
    ref.write_text("the cat sits\na dog runs away\n", encoding="utf-8")
    real = FIXTURES / "real_formats"
    modules, results = cli_modules(
        ["score", "--hyp", str(hyp), "--ref", str(ref), "--lang", "en"],
        ["compare", "--baseline", str(hyp), "--system", str(ref), "--ref", str(ref), "--lang", "en",
         "--resamples", "20"],
        # annotations of two real releases: a CSV one and CSL-Daily's pickle (NumPy, no torch)
        ["data", "check", "--dataset", "how2sign", "--root", str(real / "how2sign")],
        ["data", "check", "--dataset", "csl-daily", "--root", str(real / "csl_daily"), "--splits", "test"],
        ["report", str(tmp_path / "no-run"), "--out", str(tmp_path / "report.md")],
    )
    assert [rc for rc, _ in results][:2] == [0, 0], results
    assert results[2][0] == 1, results[2]  # 1: the fixture has no clips, so rvlf extract could not make features
    assert results[3][0] == 1, results[3]  # 1: no frames either (and the release's split-list mismatch)
    assert results[4][0] == 2 and "no-run" in results[4][1], results[4]  # one line naming the folder
    heavy = modules & set(HEAVY) - {"sacrebleu"}  # score and compare need sacrebleu; nothing else here
    assert not heavy, sorted(heavy)


def test_plan_memory_builds_models_with_torch_and_transformers_only():
    modules, results = cli_modules(["plan-memory", "--config", str(REPO / "configs/paper/phoenix/sft.yaml"),
                                    "--json"])
    assert results[0][0] == 0, results
    assert {"torch", "transformers"} <= modules
    assert not modules & {"peft", "trl", "cv2", "mediapipe", "gradio", "matplotlib", "av"}, \
        sorted(modules & {"peft", "trl", "cv2", "mediapipe", "gradio", "matplotlib", "av"})
