"""What `rvlf app` prints while it serves: its own lines only. Gradio printed `* Running on local URL: ...`
(without rvlf's prefix) and `* To create a public link, set share=True in launch()` (rvlf has no share
link), and on Ctrl+C `Keyboard interruption in main thread... closing server.`. The real command in
its own process with the tiny GRPO checkpoint, stopped with SIGINT as Ctrl+C does; no browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from helpers import REPO
from rvlf.errors import RvlfError
from rvlf.inference.app import serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_prints_its_url_as_its_own_line_and_no_share_hint(tiny_grpo_run, tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rvlf", "app", "--checkpoint", str(tiny_grpo_run / "best"),
                             "--port", str(port), "--device", "cpu"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                            # Ctrl+C's default action in the app, whatever this test process inherited (a
                            # background job of a non-interactive shell starts with SIGINT ignored)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 180
        while not any("serving on" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.time() < deadline, "".join(lines)
            time.sleep(0.2)
        with urllib.request.urlopen(url, timeout=30) as page:  # the URL it printed answers
            assert page.status == 200
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            assert proc.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError("rvlf app did not stop on SIGINT within 60 s:\n" + "".join(lines)) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    text = "".join(lines)
    assert f"rvlf app: serving on {url} (Ctrl+C stops it)\n" in text, text
    assert text.endswith("rvlf app: stopped\n"), text
    assert "share" not in text and "Running on" not in text and "Keyboard interruption" not in text, text
    assert all(line.startswith("rvlf app: ") for line in lines if line.strip()), text


def test_a_port_in_use_is_one_line_in_rvlf_options(tiny_grpo_run, capsys):
    """The variant: Gradio's `Cannot find empty port ... passing the server_port parameter to launch()`
    becomes one line that names --port and --host; nothing else printed but rvlf's own lines."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RvlfError) as err:
            serve(str(tiny_grpo_run / "best"), port=port, device="cpu")
    assert str(err.value) == (f"cannot serve on 127.0.0.1:{port}: port {port} is in use, or 127.0.0.1 is not "
                              "an address of this computer (--port, --host)")
    out = capsys.readouterr()
    assert all(line.startswith("rvlf app: ") for line in (out.out + out.err).splitlines() if line.strip()), out
