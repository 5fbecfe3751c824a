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
	@$(PY) -m pytest -q -n 2 -m "not slow" tests

# Everything, including slow tests; first the ONNX export tools (jax2onnx without its stale orbax pin).
# The TFLite tests run only where tensorflow-cpu and ai-edge-litert are installed (about 1.5 GB, by hand).
test-all: venv
	@$(PY) -m pip install -q -e '.[test,export]'
	@$(PY) -m pip install -q --no-deps 'jax2onnx==0.17.1'
	@$(PY) -m pytest -q -n 2 tests

# The TFLite export tests: TensorFlow (about 1.5 GB) goes to .tflite-pkgs/, seen only by these tests. Its
# dependencies are named one by one (--no-deps) so that nothing there shadows the venv's numpy or protobuf.
TFLITE_PKGS := .tflite-pkgs
TFLITE_REQS := tensorflow-cpu ai-edge-litert astunparse backports.strenum gast google-pasta grpcio h5py keras \
	libclang namex optree
test-tflite: venv
	@test -d $(TFLITE_PKGS) || $(PY) -m pip install -q --no-deps --target $(TFLITE_PKGS) $(TFLITE_REQS)
	@PYTHONPATH=$(TFLITE_PKGS) $(PY) -m pytest -q -p no:xdist tests/test_export_tflite.py

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
