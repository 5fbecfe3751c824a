"""Test session setup: several CPU devices (so sharding tests run everywhere) and
full-precision matmuls (golden tolerances assume float32, not TF32/bf16 passes)."""
import os

# Must happen before JAX initialises its backends.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The training loop would otherwise switch the first test process that trains to synchronous CPU dispatch and
# glibc's keep-the-heap settings (flaxzoo/cpu_memory.py); test_cpu_memory.py runs them in fresh subprocesses.
os.environ.setdefault("FLAXZOO_CPU_MEMORY", "default")

# One persistent compilation cache per test session, shared by the xdist workers and the subprocesses the tests
# start (they inherit the environment): the many small training runs compile the same programs again and again,
# and a cache hit costs a fraction of a compile. Made fresh each session, so timings stay honest; removed at exit
# by the process that made it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="flaxzoo-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pathlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

GOLDEN = pathlib.Path(__file__).parent / "golden"


def golden_cases(family: str, kind: str | None = None) -> list[pytest.param]:
    """One pytest param per `<case>.json` under tests/golden/<family>/, id = case name."""
    import json

    cases = []
    for path in sorted((GOLDEN / family).glob("*.json")):
        meta = json.loads(path.read_text())
        if "suggested_tolerance" not in meta:  # key listings etc., not cases
            continue
        if kind is not None and meta.get("kind") != kind:
            continue
        cases.append(pytest.param(path, id=path.stem))
    return cases


@pytest.fixture
def fast_compile(monkeypatch):
    """For tests of the loop's behaviour (resume, sharding, data), not of XLA's optimiser: skip most of its passes
    (20-40% less compile time), in this process and in the subprocesses the test starts. Both sides of every
    comparison such a test makes run under the same setting."""
    read = getattr(jax.config, "read", None) or jax.config._read
    before = read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")
    yield
    jax.config.update("jax_disable_most_optimizations", before)
