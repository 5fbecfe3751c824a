# flaxzoo developer entry points. `make test` is what CI runs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-all train bench clean

venv: $(STAMP)

# Rebuilt only when setup.py changes, so a second `make venv` is silent.
$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The default suite: fast, CPU only, under 10 minutes on 2 cores.
test: venv
	@$(PY) -m pytest -q -n 2 -m "not slow" tests

# Everything, including slow tests.
test-all: venv
	@$(PY) -m pytest -q -n 2 tests

# Train the default example (a small Swin on real texture photos bundled with scikit-image,
# no download) into runs/; running it again resumes. Any config works: CONFIG=... WORKDIR=...
CONFIG ?= configs/swin/textures.py
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
train: venv
	@$(PY) scripts/train.py --config $(CONFIG) --workdir $(WORKDIR)

bench: venv
	@$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache
