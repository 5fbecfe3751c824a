# flaxzoo developer entry points. `make test` is what CI runs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-all test-tflite train bench clean

venv: $(STAMP)

# Rebuilt only when setup.py changes, so a second `make venv` is silent.
$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The default suite: fast, CPU only, under 10 minutes on 2 cores.
test: venv
	@$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow" tests

# Everything, including slow tests; first the ONNX export tools (jax2onnx without its stale orbax pin).
# The TFLite tests run only where tensorflow-cpu and ai-edge-litert are installed (about 1.5 GB, by hand).
test-all: venv
	@$(PY) -m pip install -q -e '.[test,export]'
	@$(PY) -m pip install -q --no-deps 'jax2onnx==0.17.1'
	@$(PY) -m pytest -q -n 2 --dist worksteal tests

# The TFLite export tests: TensorFlow (about 1.5 GB) goes to .tflite-pkgs/, seen only by these tests. Its
# dependencies are named one by one (--no-deps) so that nothing there shadows the venv's numpy or protobuf.
TFLITE_PKGS := .tflite-pkgs
TFLITE_REQS := tensorflow-cpu ai-edge-litert astunparse backports.strenum gast google-pasta grpcio h5py keras \
	libclang namex optree
test-tflite: venv
	@test -d $(TFLITE_PKGS) || $(PY) -m pip install -q --no-deps --target $(TFLITE_PKGS) $(TFLITE_REQS)
	@PYTHONPATH=$(TFLITE_PKGS) $(PY) -m pytest -q -p no:xdist tests/test_export_tflite.py

# Train the default job: a small MAXIM denoiser (sigma 25) on photos bundled with scikit-image (no download), then
# its report on held-out photos (runs/default/report/: summary.json, grid.png). Running it again resumes (and
# rewrites the report). Any config works: CONFIG=... WORKDIR=...; the report is only for the default job.
DEFAULT_CONFIG := configs/maxim/default.py
CONFIG ?= $(DEFAULT_CONFIG)
WORKDIR ?= runs/$(basename $(notdir $(CONFIG)))
train: venv
	@$(PY) scripts/train.py --config $(CONFIG) --workdir $(WORKDIR)
ifeq ($(CONFIG),$(DEFAULT_CONFIG))
	@$(PY) scripts/denoise_report.py --workdir $(WORKDIR) --overwrite
endif

# The CPU benchmark set (minutes), one JSON (+ PNG for sweeps) per entry in bench/, then BENCHMARKS.md's tables.
bench: venv
	@$(PY) scripts/benchmark.py --suite cpu --out-dir bench --overwrite
	@$(PY) scripts/bench_report.py --bench-dir bench --markdown BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache
