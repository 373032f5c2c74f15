# Two commands do everything: `make demo` and `make test`. Both create .venv on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
BASE    := $(VENV)/.rvlf-base
STAMP   := $(VENV)/.rvlf-installed
# CPU wheel by default; on a GPU box install your CUDA torch into .venv first and it is kept.
TORCH   ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

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

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results.md

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
