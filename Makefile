# Two commands do everything: `make demo` and `make test`. Both create .venv on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
BASE    := $(VENV)/.rvlf-base
STAMP   := $(VENV)/.rvlf-installed
# CPU wheel by default; on a GPU box install your CUDA torch into .venv first and it is kept.
TORCH   ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean browser

# the package and what the demo needs (no MediaPipe, Gradio or test tools: a quicker first `make demo`).
# --no-compile: no .pyc for the thousands of modules never imported (torch alone: ~15 s of set-up);
# Python compiles the ones a run imports on first use.
$(BASE): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --no-compile --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --no-compile --disable-pip-version-check -e .
	@touch $(BASE)

# everything: MediaPipe (extraction), Gradio (rvlf app), the test tools
$(STAMP): $(BASE)
	$(PY) -m pip install -q --no-compile --disable-pip-version-check -e '.[all]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(BASE)
	$(VENV)/bin/rvlf demo --out runs/demo

# The browser tests (tests/test_app_browser.py) drive Debian's Chromium through its chromedriver.
# Installed here when missing and we are root with apt-get (a fresh CI machine); a no-op when present.
# Otherwise those tests skip, naming what to install. As root they must run: RVLF_REQUIRE_BROWSER=1.
HAVE_BROWSER = command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
CAN_APT      = [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1

browser:
	@if $(HAVE_BROWSER); then :; \
	elif $(CAN_APT); then \
	  echo "make: installing Debian's chromium and chromium-driver for the browser tests (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
	  echo "make: chromium/chromedriver not found and not root with apt-get: the browser tests will be skipped" \
	       "(install Debian's chromium and chromium-driver to run them)" >&2; \
	fi

test: $(STAMP) browser
	RVLF_REQUIRE_BROWSER=$$($(CAN_APT) && echo 1) $(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results.md

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
