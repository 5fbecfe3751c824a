"""README.md works as written: every ```python block runs, every shell command is either run by CI or says
what it needs (data, a GPU) and how long it takes on a 2-core CPU.

Substitution for blocks that need real weight files (documented here, the README says so in the block):
a block's released model names are rewritten to tiny presets (`TINY`), and each weights file it names
(`FILES`) is replaced by tiny flaxzoo weights generated for that preset. `pretrained=True` reads them from a
temporary cache folder ($FLAXZOO_CACHE) in which the tiny presets are given released weights. Each block
runs in-process on its own (they are self-contained), in a temporary working directory.
"""
import pathlib
import re

import pytest

import flaxzoo
from flaxzoo.models import registry
from flaxzoo.models.convert.common import save_params

README = pathlib.Path(__file__).parents[1] / "README.md"
TINY = {"swin_tiny_patch4_window7_224": "swin_test_tiny", "maxim_s3_denoising_sidd": "maxim_tiny"}
FILES = {"swin_tiny_patch4_window7_224.pth": "swin_test_tiny", "checkpoint.npz": "maxim_tiny"}
CI_COMMANDS = {"make venv", "make test"}  # what .ci/run executes
# A shell command's own comment (or the comment lines above it) must say what it needs or how long it takes.
COST = re.compile(r"needs|\b\d+(\.\d+)?\s*(s|min|minutes?|h|hours?)\b|a few (seconds|minutes)|about a minute|"
                  r"minutes|hours", re.IGNORECASE)


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def substitute(code, files):
    for name, path in files.items():
        code = code.replace(f'"{name}"', repr(str(path)))
    for name, tiny in TINY.items():
        code = code.replace(f'"{name}"', f'"{tiny}"')
    return code


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    """Tiny weights for every substituted file and released name, and a cache folder holding them."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("FLAXZOO_CACHE", str(cache))
    made = {}
    for tiny in sorted(set(TINY.values())):
        path = cache / f"{tiny}.safetensors"
        save_params(flaxzoo.create_model(tiny), path, model_name=tiny)
        spec = registry.get_spec(tiny)
        weights = dict(url="https://example.invalid/tiny", file=path.name, license="test")
        monkeypatch.setitem(registry._REGISTRY, tiny,
                            registry.dataclasses.replace(spec, info={**spec.info, "weights": weights}))
        made[tiny] = path
    return {name: made[tiny] for name, tiny in FILES.items()}


# Blocks whose run compiles a whole MAXIM (twice: whole image and tiles), over a minute on 2 busy cores.
SLOW = ("restore_image",)


def test_readme_has_python_blocks():
    assert len(blocks("python")) >= 4


@pytest.mark.parametrize("index", [
    pytest.param(i, marks=[pytest.mark.slow] if any(w in b for w in SLOW) else [])
    for i, b in enumerate(blocks("python"))], ids=lambda i: f"block{i + 1}")
def test_python_block_runs(tiny_weights, index):
    """Each block is self-contained (a reader may copy any one of them), so each runs on its own."""
    block = blocks("python")[index]
    try:
        exec(compile(substitute(block, tiny_weights), f"README.md python block {index + 1}", "exec"), {})
    except Exception as e:
        raise AssertionError(f"README python block {index + 1} fails:\n{block}") from e


def test_every_shell_command_runs_in_ci_or_says_what_it_needs():
    unmarked = []
    for block in blocks("bash"):
        comments = []
        lines = block.splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("#"):
                comments.append(stripped)
                continue
            if not stripped or (i and lines[i - 1].rstrip().endswith("\\")):
                continue  # blank, or the continuation of the previous command
            command, _, inline = stripped.partition(" #")
            if command.strip() not in CI_COMMANDS and not COST.search(inline + " ".join(comments)):
                unmarked.append(stripped)
            comments = []
    assert not unmarked, f"README shell commands that neither run in CI nor say their cost: {unmarked}"
