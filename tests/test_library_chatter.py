"""Library chatter stays out of rvlf's stderr: `rvlf app` printed `rvlf app: HTTP Request: GET
http://127.0.0.1:7860/gradio_api/startup-events "HTTP/1.1 200 OK"` (httpx's INFO log of Gradio's own
start-up calls, under rvlf's prefix). Real httpx requests to a local server, with the CLI's logging set-up."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

SCRIPT = r"""
import http.server, logging, threading, sys
import httpx
from rvlf.cli import CommandLines, quiet_libraries
from rvlf.progress import set_command
quiet_libraries(debug=sys.argv[1] == "debug")
logging.basicConfig(level=logging.INFO, format="%(message)s")
set_command("app")  # as rvlf.cli.main does for `rvlf app`
logging.getLogger().handlers[0].setFormatter(CommandLines())
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
httpx.get(f"http://127.0.0.1:{server.server_port}/")   # as Gradio's launch() calls its own page
httpx.head(f"http://127.0.0.1:{server.server_port}/nothing-here")
logging.getLogger("rvlf.inference.app").info("rvlf app: our own line")
server.shutdown()
"""


def _stderr(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_http_request_lines_are_not_logged_and_rvlf_lines_are():
    assert _stderr("quiet") == "rvlf app: our own line\n"


def test_debug_still_shows_them():  # the variant: --debug keeps every library's log
    err = _stderr("debug")
    assert "HTTP Request: GET http://127.0.0.1:" in err and "HTTP Request: HEAD" in err
