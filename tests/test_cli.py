"""The command-line tools: --help runs nothing, every user mistake is one line naming the problem
(exit code 2, no traceback unless --debug, nothing written), --weights takes a run's workdir.

Most checks call the tools' `main(argv)` in-process (a subprocess costs seconds of imports each);
one subprocess checks the thin scripts/*.py wrappers end to end.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from flaxzoo import cli
from flaxzoo.scripts import convert as convert_cli
from flaxzoo.scripts import restore as restore_cli
from flaxzoo.scripts import train as train_cli
from flaxzoo.train.config_check import ConfigError, check_config
from flaxzoo.train.config_file import apply_override, load_config

ROOT = pathlib.Path(__file__).parents[1]
TEXTURES = str(ROOT / "configs" / "swin" / "textures.py")
MAXIM_NPZ = str(ROOT / "tests" / "golden" / "maxim" / "s3_tiny.params.npz")  # official layout, maxim_tiny_s3


def run_main(main, argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == cli.EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ----------------------------------------------------------------------------- train
@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


TRAIN_MISTAKES = {
    # id: (extra args, words the message must contain)
    "missing_config_file": (["--config", "configs/nope.py"], ["configs/nope.py", "does not exist"]),
    "misspelt_key": (["--config.batch_siz=3"], ["batch_siz", "Did you mean: batch_size"]),
    "misspelt_nested_key": (["--config.optim.lrr=0.1"], ["optim.lrr", "optim.lr"]),
    "wrong_type": (["--config.batch_size=abc"], ["batch_size", "integer"]),
    "wrong_type_float": (["--config.optim.lr=fast"], ["optim.lr", "number"]),
    "override_without_value": (["--config.total_steps"], ["--config.total_steps", "value"]),
    "group_set_as_value": (["--config.optim=3"], ["optim", "group"]),
    "non_positive_steps": (["--config.total_steps=-5"], ["total_steps=-5", ">= 1"]),
    "zero_batch": (["--config.batch_size=0"], ["batch_size=0", ">= 1"]),
    "zero_log_every": (["--config.log_every=0"], ["log_every"]),
    "negative_eval_every": (["--config.eval_every=-1"], ["eval_every", "turns evaluation off"]),
    "zero_checkpoint_every": (["--config.checkpoint_every=0"], ["checkpoint_every"]),
    "zero_keep": (["--config.keep_checkpoints=0"], ["keep_checkpoints"]),
    "negative_lr": (["--config.optim.lr=-0.1"], ["optim.lr", ">= 0"]),
    "negative_weight_decay": (["--config.optim.weight_decay=-1"], ["optim.weight_decay"]),
    "batch_not_over_devices": (["--config.batch_size=30"], ["batch_size=30", "8 devices", "multiple of 8"]),
    "unknown_model": (["--config.model.name=swin_test_tiy"], ["swin_test_tiy", "swin_test_tiny"]),
    "unknown_task": (["--config.task.name=clasify"], ["clasify", "classify"]),
    "misspelt_model_argument": (["--config.model.kwargs.drop_path_rat=0.1"], ["drop_path_rat", "drop_path_rate"]),
    "model_argument_wrong_type": (["--config.model.kwargs.drop_path_rate=abc"], ["drop_path_rate", "float"]),
    "model_argument_tuple_type": (["--config.model.kwargs.depths=3"], ["depths"]),
    "missing_workdir_flag": (None, ["--workdir"]),
    "unknown_flag": (["--bogus"], ["--bogus"]),
}


@pytest.mark.parametrize("case", list(TRAIN_MISTAKES), ids=list(TRAIN_MISTAKES))
def test_train_mistakes_are_one_line_and_write_nothing(case, tmp_path, capsys):
    extra, needles = TRAIN_MISTAKES[case]
    workdir = tmp_path / "run"
    if extra is None:
        argv = ["--config", TEXTURES]
    else:
        argv = ["--config", TEXTURES, "--workdir", str(workdir)] + extra
    code, _, err = run_main(train_cli.main, argv, capsys)
    assert_one_line_error(code, err, *needles)
    assert not workdir.exists()  # nothing is created before the arguments are validated


def test_train_workdir_that_is_a_file(afile, capsys):
    for workdir, needle in ((afile, "is a file"), (afile / "sub", "cannot be created")):
        code, _, err = run_main(train_cli.main, ["--config", TEXTURES, "--workdir", str(workdir)], capsys)
        assert_one_line_error(code, err, str(workdir), needle)
    assert afile.read_text() == "not a folder"


def test_train_debug_shows_the_traceback(tmp_path, capsys):
    code, _, err = run_main(train_cli.main, ["--config", TEXTURES, "--workdir", str(tmp_path / "r"),
                                             "--config.batch_siz=3", "--debug"], capsys)
    assert code == cli.EXIT_USAGE and "Traceback" in err and err.strip().endswith(
        "See the fields with --help --config <file>.")


def test_train_help_lists_config_fields_and_runs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(train_cli.main, ["--help"], capsys)
    assert code == 0 and "--workdir" in out and "--config.<field>" in out
    assert "total_steps = 1000" in out and "optim.lr = 0.001" in out  # the shared defaults
    code, out, _ = run_main(train_cli.main, ["--config", TEXTURES, "--help"], capsys)
    assert code == 0 and "total_steps = 300" in out and "model.kwargs.embed_dim = 32" in out  # the file's values
    assert "model.kwargs.drop_path_rate (default 0.1)" in out  # constructor arguments the config does not set
    assert list(tmp_path.iterdir()) == []


def test_any_model_argument_can_be_set_and_is_checked():
    config = load_config(TEXTURES)
    apply_override(config, "model.kwargs.drop_path_rate", "0.25")  # not in the config file
    apply_override(config, "model.kwargs.depths", "(2, 2)")
    apply_override(config, "model.kwargs.num_heads", "(2, 4)")
    apply_override(config, "batch_size", "16")
    apply_override(config, "data.data_dir", "/data")  # a None field takes a string
    assert config.model.kwargs.drop_path_rate == 0.25 and config.model.kwargs.depths == (2, 2)
    assert config.batch_size == 16 and config.data.data_dir == "/data"
    check_config(config, num_devices=8)
    config.model.kwargs.qkv_bias = "yes"
    with pytest.raises(ConfigError, match="qkv_bias.*bool"):
        check_config(config, num_devices=8)


def test_every_preset_passes_the_model_argument_check():
    """No false alarms: each registered preset's own arguments are accepted as they are."""
    import flaxzoo
    from flaxzoo.train.config_check import check_model_kwargs

    for name in flaxzoo.list_models():
        check_model_kwargs(name, dict(flaxzoo.get_spec(name).kwargs))


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("configs/*/*.py")))
def test_every_config_file_passes_the_checks(path):
    check_config(load_config(str(ROOT / path)), num_devices=1)


CONFIG_VALUES = {
    # field, bad value, words the message must contain
    "ema_decay_one": ("ema_decay", 1.0, "[0, 1)"),
    "ema_decay_negative": ("ema_decay", -0.1, "ema_decay"),
    "grad_accum_zero": ("grad_accum_steps", 0, "grad_accum_steps"),
    "best_mode": ("best_mode", "biggest", "max, min"),
    "compute_dtype": ("compute_dtype", "float16", "bfloat16"),
    "steps_float": ("total_steps", 10.5, "integer"),
    "steps_bool": ("total_steps", True, "integer"),
    "lr_nan": ("optim.lr", float("nan"), "optim.lr"),
    "warmup_negative": ("optim.warmup_steps", -1, "warmup"),
}


@pytest.mark.parametrize("case", list(CONFIG_VALUES), ids=list(CONFIG_VALUES))
def test_check_config_names_the_bad_field(case):
    import ml_collections

    field, value, needle = CONFIG_VALUES[case]
    config = load_config(TEXTURES)
    *parents, name = field.split(".")
    node = config
    for p in parents:
        node = node[p]
    with node.unlocked():
        if name in node:
            del node[name]  # a new type, not a type-checked assignment
        node[name] = value
    with pytest.raises(ConfigError, match=re.escape(needle)):
        check_config(config, num_devices=1)
    assert isinstance(config, ml_collections.ConfigDict)


def test_micro_batches_split_over_the_devices():
    config = load_config(TEXTURES)
    with config.unlocked():
        config.grad_accum_steps = 2
    config.batch_size = 24
    with pytest.raises(ConfigError, match="grad_accum_steps=2: use a multiple of 16"):
        check_config(config, num_devices=8)
    config.batch_size = 32
    check_config(config, num_devices=8)


def test_train_loop_checks_the_config_first(tmp_path):
    from flaxzoo.train.loop import train

    config = load_config(TEXTURES)
    config.total_steps = -5
    with pytest.raises(ConfigError, match="total_steps"):
        train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- restore
def _images(folder: pathlib.Path, size=32):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / "a.jpg")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


@pytest.fixture
def swin_weights(tmp_path):
    import flaxzoo
    from flaxzoo.models.convert.common import save_params

    path = tmp_path / "swin.safetensors"
    save_params(flaxzoo.create_model("swin_test_tiny"), path, model_name="swin_test_tiny")
    return path


def _bad_weight_files(folder: pathlib.Path) -> list[pathlib.Path]:
    real = pathlib.Path(MAXIM_NPZ).read_bytes()
    files = {"empty.npz": b"", "truncated.npz": real[:1000], "garbage.safetensors": b"garbage",
             "empty.safetensors": b""}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def test_restore_argument_mistakes(tmp_path, afile, swin_weights, capsys):
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    base = ["--model", "maxim_tiny_s3", "--weights", MAXIM_NPZ, "--input", str(src), "--output", str(out)]
    mistakes = [(["--model", "maxim_tiny_s3", "--weights", str(bad), "--input", str(src), "--output", str(out)],
                 [str(bad)]) for bad in _bad_weight_files(tmp_path)]
    mistakes += [
        (base + ["--batch-size", "0"], ["--batch-size 0", ">= 1"]),
        (base + ["--tile", "0"], ["--tile 0"]),
        (base + ["--tile", "64", "--overlap", "40"], ["--overlap 40", "half the tile"]),
        (base + ["--overlap", "-1"], ["--overlap -1"]),
        (base + ["--tile", "abc"], ["--tile", "abc"]),
        (base + ["--pattern", "*.gif"], ["--pattern '*.gif'"]),
        (base + ["--pattern", "sub/*.png"], ["--pattern", "no folders"]),
        (base[:-1] + [str(afile)], ["--output", "is a file"]),
        (["--model", "maxim_tiny_s3", "--weights", MAXIM_NPZ, "--input", str(tmp_path / "nope"),
          "--output", str(out)], ["--input", "does not exist"]),
        (["--model", "maxim_tiny_s3", "--weights", str(tmp_path / "no.npz"), "--input", str(src),
          "--output", str(out)], ["--weights", "does not exist"]),
        (["--weights", str(tmp_path), "--input", str(src), "--output", str(out)], ["without model.safetensors"]),
        (["--weights", MAXIM_NPZ, "--input", str(src), "--output", str(out)], ["--model"]),
        (["--model", "maxim_tiny", "--weights", str(swin_weights), "--input", str(src), "--output", str(out)],
         ["'swin_test_tiny' weights", "--model is 'maxim_tiny'"]),
        (["--weights", str(swin_weights), "--input", str(src), "--output", str(out)], ["swin model", "maxim"]),
        (["--model", "maxim_tiny_s", "--weights", MAXIM_NPZ, "--input", str(src), "--output", str(out)],
         ["maxim_tiny_s3"]),
        (base + ["--tile", "20"], ["--tile 20", "multiple"]),
    ]
    for argv, needles in mistakes:
        code, _, err = run_main(restore_cli.main, argv, capsys)
        assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_restore_output_names_never_collide():
    files = ["in/a.png", "in/a.jpg", "in/b.png", "in/a.jpg.png", "in/c.tif"]
    names = restore_cli.output_names(files)
    assert len(set(names.values())) == len(files)
    assert names["in/b.png"] == "b.png" and names["in/c.tif"] == "c.png"
    assert names["in/a.png"] != names["in/a.jpg"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fake_maxim_run(workdir: pathlib.Path):
    """What a training run of configs/maxim/denoise.py leaves: config.json + model.safetensors of a
    MAXIM whose constructor settings differ from the preset."""
    import flaxzoo
    from flaxzoo.models.convert.common import save_params

    kwargs = {"features": 16, "conv_init_scale": 0.5}
    workdir.mkdir()
    save_params(flaxzoo.create_model("maxim_tiny", **kwargs), workdir / "model.safetensors", model_name="maxim_tiny")
    (workdir / "config.json").write_text(json.dumps({"model": {"name": "maxim_tiny", "kwargs": kwargs}}))
    return workdir


@pytest.mark.usefixtures("fast_compile")  # a test of the CLI, not of XLA's optimiser (tests/conftest.py)
def test_restore_a_trained_maxim_skips_unreadable_images(tmp_path, capsys):
    from PIL import Image

    run = _fake_maxim_run(tmp_path / "run")
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    (out).mkdir()
    (out / "a.png.png").write_bytes(b"the user's file")
    code, stdout, err = run_main(restore_cli.main, ["--weights", str(run), "--input", str(src),
                                                    "--output", str(out)], capsys)
    assert code == cli.EXIT_FAILED, err
    assert "cannot read" in stdout and "broken.png" in stdout and "1 could not be read or restored" in stdout
    assert "compiling" in stdout
    assert (out / "a.png.png").read_bytes() == b"the user's file"  # kept: no --overwrite
    assert np.asarray(Image.open(out / "a.jpg.png")).shape == (32, 32, 3)
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg.png", "a.png.png"]  # no temporary files left
    assert (out / "a.jpg.png").stat().st_mode & 0o777 == 0o666 & ~_umask()
    # The same run's weights file with --model given too, tiled: same model, same image.
    out2 = tmp_path / "out2"
    code, stdout, _ = run_main(restore_cli.main, ["--model", "maxim_tiny", "--weights", str(run / "model.safetensors"),
                                                  "--input", str(src), "--pattern", "a.jpg", "--output", str(out2),
                                                  "--tile", "32", "--overlap", "8"], capsys)
    assert code == 0 and "Restored 1 of 1" in stdout
    np.testing.assert_array_equal(np.asarray(Image.open(out2 / "a.png")), np.asarray(Image.open(out / "a.jpg.png")))


def test_weights_rebuild_the_model_from_the_file_alone(tmp_path):
    """load_pretrained(path) (frontdoor): no --model and no config.json beside the file."""
    if not cli._rebuilds_from_file():
        pytest.skip("needs flaxzoo.load_pretrained(path), which rebuilds a model from the file's metadata "
                    "(frontdoor branch, not merged yet)")
    import flaxzoo
    from flaxzoo.models.convert.common import model_param_shapes, save_params

    path = tmp_path / "w.safetensors"
    trained = flaxzoo.create_model("maxim_tiny", features=16)
    save_params(trained, path, model_name="maxim_tiny", model_kwargs={"features": 16})
    assert model_param_shapes(cli.load_weights(str(path), family="maxim")) == model_param_shapes(trained)


# ----------------------------------------------------------------------------- convert, benchmarks
def test_convert_mistakes(tmp_path, capsys):
    existing = tmp_path / "exists.safetensors"
    existing.write_bytes(b"the user's file")
    mistakes = [
        (["swin_tiny_patch4", MAXIM_NPZ, str(tmp_path / "o.safetensors")], ["swin_tiny_patch4_window7_224"]),
        (["maxim_tiny_s3", MAXIM_NPZ, str(tmp_path / "o.npz")], ["DST", ".safetensors"]),
        (["maxim_tiny_s3", MAXIM_NPZ, str(existing)], ["exists", "--overwrite"]),
        (["maxim_tiny_s3", str(tmp_path / "none.npz"), str(tmp_path / "o.safetensors")], ["SRC", "not a file"]),
        (["maxim_tiny_s3", MAXIM_NPZ, str(tmp_path / "o.safetensors"), "--set", "features"], ["--set", "KEY=VALUE"]),
        (["maxim_tiny_s3", MAXIM_NPZ, str(tmp_path / "o.safetensors"), "--set", "featurs=8"], ["featurs", "features"]),
        (["maxim_tiny_s3", MAXIM_NPZ, str(tmp_path / "o.safetensors"), "--num-classes", "0"], ["--num-classes"]),
    ]
    mistakes += [(["maxim_tiny_s3", str(bad), str(tmp_path / "o.safetensors")], [str(bad)])
                 for bad in _bad_weight_files(tmp_path)]
    for argv, needles in mistakes:
        code, _, err = run_main(convert_cli.main, argv, capsys)
        assert_one_line_error(code, err, *needles)
    assert existing.read_bytes() == b"the user's file" and not (tmp_path / "o.safetensors").exists()


def _script(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["benchmark", "bench_report", "bench_maxim", "bench_uoe"])
def test_benchmark_help_runs_nothing(name, capsys, monkeypatch):
    module = _script(name)
    entry = getattr(module, "run", None) or module.main  # the peers' own run, or a 3-line wrapper's main
    ran = []
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: ran.append(a) or 0)
    code, out, _ = run_main(lambda argv: cli.call(entry, argv), ["--help"], capsys)
    assert code == 0 and "--debug" in out and "usage:" in out and not ran
    code, _, err = run_main(lambda argv: cli.call(entry, argv), ["--no-such-flag"], capsys)
    assert_one_line_error(code, err, "--no-such-flag")


def test_benchmark_unknown_model(capsys):
    code, _, err = run_main(lambda argv: cli.call(_script("benchmark").main, argv), ["--model", "swim"], capsys)
    assert_one_line_error(code, err, "swim", "list_models")


def test_one_line_keeps_what_and_fix():
    e = ValueError("The checkpoint does not match the model.\nMissing (2):\n  a\n  b\nPass the matching overrides.")
    assert cli.one_line(e) == ("The checkpoint does not match the model. Pass the matching overrides. "
                               "(--debug shows the details)")


def test_console_scripts_are_the_scripts():
    """Every console script is a scripts/ wrapper of the same program, and every program wrapper has one."""
    setup = (ROOT / "setup.py").read_text()
    entries = dict(re.findall(r'"(flaxzoo-[\w-]+)=([\w.:]+)"', setup))
    assert {"flaxzoo-train", "flaxzoo-restore", "flaxzoo-convert", "flaxzoo-eval"} <= set(entries)
    for name, target in entries.items():
        module, func = target.split(":")
        tool = importlib.import_module(module)
        assert callable(getattr(tool, func))
        wrapper = (ROOT / "scripts" / f"{name.removeprefix('flaxzoo-').replace('-', '_')}.py").read_text()
        assert f"from {module} import main" in wrapper and "sys.path" not in wrapper
    wrapped = {m for path in (ROOT / "scripts").glob("*.py")
               for m in re.findall(r"from (flaxzoo\.scripts\.\w+) import main", path.read_text())}
    assert wrapped == {target.split(":")[0] for target in entries.values()}


def test_script_wrapper_subprocess_one_line_exit_2(tmp_path):
    """The real thing, once: python scripts/train.py, a mistake, exit code 2, one line, nothing written."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--config", TEXTURES,
                           "--workdir", str(tmp_path / "run"), "--config.total_stpes=3"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "total_steps" in proc.stderr
    assert not (tmp_path / "run").exists()
