"""The benchmark CLI (scripts/benchmark.py) on a tiny model, its JSON, the peers, sweeps, plots and BENCHMARKS.md.

No timing asserts: the figures are only checked for being real measurements (positive, consistent with each
other and with the model), never against a speed.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from flaxzoo import cli
from flaxzoo.bench import fit, peers, plot, report
from flaxzoo.bench.dense_lm import DenseLM
from flaxzoo.bench.measure import count_params, parse_size
from flaxzoo.scripts import bench_report, benchmark

TINY_LM = ["--model", "uoe_lm_tiny", "--size", "8", "--batch", "2", "--repeats", "1", "--warmup", "0",
           "--no-cpu-peak"]


def run_cli(main, argv, capsys):
    code = cli.call(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    assert code == cli.EXIT_USAGE, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_cli_on_a_tiny_model_with_its_dense_peer(tmp_path, capsys):
    out = tmp_path / "bench" / "uoe.json"
    out.parent.mkdir()
    code, stdout, _ = run_cli(benchmark.run, TINY_LM + ["--peer", "dense", "--out", str(out)], capsys)
    assert code == 0, stdout
    rec = json.loads(out.read_text())
    assert rec["format"] == "flaxzoo-bench-v1" and rec["model"] == "uoe_lm_tiny" and rec["batch"] == 2
    assert rec["command"].startswith("python scripts/benchmark.py --model uoe_lm_tiny") and rec["date"].endswith("Z")
    assert {"platform", "device_kind", "cpu_cores", "jax", "load_avg_1min"} <= set(rec["machine"])
    import flaxzoo

    assert rec["result"]["params"] == count_params(flaxzoo.create_model("uoe_lm_tiny", rngs=nnx.Rngs(0)))
    infer = rec["result"]["infer"]
    assert infer["compile_s"] > 0 and 0 < infer["min_s"] <= infer["median_s"] and infer["repeats"] == 1
    assert infer["tokens_per_s"] == pytest.approx(2 * 8 / infer["median_s"])  # batch x sequence length
    assert infer["flops"] > 0 and "temporaries_mib" in infer["memory"] and "train" not in rec["result"]
    dense = rec["peers"][0]
    assert dense["peer"] == "dense" and dense["status"] == "ok"
    # Equal parameters by construction (within the routers' few weights), not the same model.
    assert dense["params"] != rec["result"]["params"]
    assert abs(dense["params"] - rec["result"]["params"]) < 0.05 * rec["result"]["params"]
    assert "flaxzoo infer" in stdout and "dense infer" in stdout

    # BENCHMARKS.md: the generated section appears once, with the row's machine, command and date; the rest of
    # the file is kept; a second run changes nothing and --check agrees.
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nHand-written rows stay.\n")
    argv = ["--bench-dir", str(out.parent), "--markdown", str(md)]
    assert run_cli(bench_report.run, argv, capsys)[0] == 0
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written rows stay.\n") and text.count(report.BEGIN) == 1
    row = next(line for line in text.splitlines() if line.startswith("| uoe_lm_tiny"))
    assert rec["command"] in row and rec["date"][:10] in row and "CPU" in row and "dense (" in row
    assert run_cli(bench_report.run, argv, capsys)[0] == 0 and md.read_text() == text
    assert run_cli(bench_report.run, argv + ["--check"], capsys)[0] == 0
    md.write_text(text.replace("tok/s", "tokens per second"))
    assert run_cli(bench_report.run, argv + ["--check"], capsys)[0] == cli.EXIT_FAILED

    # The result is the user's: not replaced without --overwrite.
    before = out.read_text()
    code, _, err = run_cli(benchmark.run, TINY_LM + ["--out", str(out)], capsys)
    one_line_error(code, err, str(out), "--overwrite")
    assert out.read_text() == before


@pytest.mark.parametrize("argv, needles", [
    (["--model", "swim_tiny"], ["swim_tiny", "list_models"]),
    (["--model", "uoe_lm_tiny", "--size", "8y8"], ["--size", "128x256"]),
    (["--model", "maxim_tiny", "--size", "40"], ["multiples of 16", "48x48"]),
    (["--model", "uoe_lm_tiny", "--peer", "timm"], ["--peer timm", "Swin"]),
    (["--model", "swin_test_tiny", "--peer", "dense"], ["--peer dense", "uoe_lm_tiny"]),
    (["--model", "uoe_lm_tiny", "--batch", "0"], ["--batch"]),
    (["--model", "uoe_lm_tiny", "--sweep-values", "1,2"], ["--sweep"]),
    (["--model", "uoe_lm_tiny", "--sweep", "batch", "--sweep-values", "4"], ["at least two"]),
    (["--model", "uoe_lm_tiny", "--out", "x.txt"], [".json"]),
    ([], ["--model", "--suite"]),
    (["--model", "swin_test_tiny", "--peer", "official"], ["--peer official", "MAXIM"]),
    (["--model", "uoe_lm_tiny", "--rounds", "0"], ["--rounds"]),
    (["--model", "uoe_lm_tiny", "--rounds", "2", "--sweep", "batch"], ["--rounds and --profile", "--sweep"]),
    (["--model", "uoe_lm_tiny", "--model-kwargs", "grouped"], ["--model-kwargs", "key=value", "'grouped'"]),
    (["--model", "uoe_lm_tiny", "--model-kwargs", "top_k=1,top_k=2"], ["top_k twice"]),
    (["--model", "uoe_lm_tiny", "--size", "8", "--model-kwargs", "expert_imp=grouped"],
     ["--model-kwargs", "expert_imp", "did you mean 'expert_impl'"]),
    (["--model", "uoe_lm_tiny", "--size", "8", "--model-kwargs", "expert_impl=groupd"],
     ["--model-kwargs", "'capacity', 'grouped'"]),
    (["--model", "maxim_tiny", "--peer", "official"], ["--official-src", "google-research/maxim"]),
    (["--model", "maxim_tiny", "--peer", "official", "--official-src", "nowhere"], ["nowhere", "maxim/models"]),
])
def test_cli_mistakes_are_one_line(argv, needles, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(benchmark.run, argv + ["--no-cpu-peak"], capsys)
    one_line_error(code, err, *needles)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_rounds_alternate_with_the_peer_and_model_kwargs_reach_the_model(tmp_path, capsys):
    """--rounds 2: each side timed twice, alternating, the figure the median of the round medians; --model-kwargs
    builds the preset with those constructor arguments (the dense peer is unaffected)."""
    out = tmp_path / "uoe.json"
    argv = TINY_LM + ["--peer", "dense", "--rounds", "2", "--model-kwargs",
                      "expert_impl=grouped,mode=trained", "--out", str(out)]
    code, stdout, _ = run_cli(benchmark.run, argv, capsys)
    assert code == 0, stdout
    rec = json.loads(out.read_text())
    assert rec["rounds"] == 2 and rec["model_kwargs"] == {"expert_impl": "grouped", "mode": "trained"}
    dense = rec["peers"][0]
    for mode in ("infer",):  # train rounds go through the same timed_program (its train mode: the profile test)
        for r in (rec["result"][mode], dense[mode]):
            assert len(r["round_medians_s"]) == 2 and all(t > 0 for t in r["round_medians_s"])
            assert r["median_s"] == pytest.approx(np.median(r["round_medians_s"]))
            assert r["min_s"] <= min(r["round_medians_s"])
        assert f"{mode}: flaxzoo / dense = " in stdout
    assert "2 rounds alternating" in report._peer(rec, "infer") and "train" not in rec["result"]
    # Rates follow the merged median.
    assert dense["infer"]["tokens_per_s"] == pytest.approx(2 * 8 / dense["infer"]["median_s"])
    assert rec["result"]["params"] == count_params(
        __import__("flaxzoo").create_model("uoe_lm_tiny", expert_impl="grouped", rngs=nnx.Rngs(0)))


def test_architecture_model_kwargs_reach_every_peer(monkeypatch):
    """--model-kwargs that change the preset's architecture build the peer the same way (a MAXIM at width 16
    against the official code at width 16, not at the preset's 32); flaxzoo's own switches stay ours."""
    commands = []
    monkeypatch.setattr(peers, "_subprocess_peer",
                        lambda peer, cmd, *a: commands.append(cmd) or {"status": "ok", "median_s": 1.0})
    r = peers.official_peer("maxim_tiny", batch=1, size=(64, 64), repeats=1, warmup=0, official_src="src",
                            model_kwargs={"features": 16, "dtype": "bfloat16"})
    sent = json.loads(commands[-1][commands[-1].index("--kwargs") + 1])
    assert sent["features"] == 16 and sent["num_stages"] == 2 and r["model_kwargs"] == {"features": 16}
    r = peers.timm_peer("swin_tiny_patch4_window7_224", batch=1, size=(224, 224), dtype="float32", repeats=1,
                        warmup=0, train=False, peer_python=sys.executable,
                        model_kwargs={"embed_dim": 64, "remat": "dots"})
    assert json.loads(commands[-1][commands[-1].index("--kwargs") + 1]) == {"embed_dim": 64}
    assert r["model_kwargs"] == {"embed_dim": 64}
    peers.timm_peer("swin_tiny_patch4_window7_224", batch=1, size=(224, 224), dtype="float32", repeats=1,
                    warmup=0, train=False, peer_python=sys.executable, model_kwargs={"remat": "dots"})
    assert "--kwargs" not in commands[-1]
    dense = peers.dense_peer("uoe_lm_tiny", batch=1, size=(16,), dtype="float32", repeats=1, warmup=0,
                             train=False, peak=None, model_kwargs={"hidden_dim": 64, "expert_impl": "grouped"})
    assert dense["model_kwargs"] == {"hidden_dim": 64}
    assert dense["params"] == count_params(DenseLM(128, 64, 2, 4, 64, rngs=nnx.Rngs(0)))


def test_merge_rounds_keeps_a_failed_round_visible():
    ok = {"status": "ok", "median_s": 2.0, "min_s": 1.5, "images_per_s": 4.0}
    merged = peers.merge_rounds([ok, {**ok, "median_s": 4.0, "min_s": 3.0, "images_per_s": 2.0},
                                 {"status": "failed (exit 1): boom"}])
    assert merged["median_s"] == 3.0 and merged["min_s"] == 1.5 and merged["failed_rounds"] == 1
    assert merged["images_per_s"] == pytest.approx(8 / 3)  # 8 images per call at the merged median
    assert peers.merge_rounds([{"status": "failed (exit 1): boom"}])["status"].startswith("failed")


def test_timm_peer_missing_is_one_status_line():
    """The peer program runs in any Python; without torch/timm there it says so instead of failing."""
    proc = subprocess.run([sys.executable, "-c", "import timm, torch"], capture_output=True)
    if proc.returncode == 0:
        pytest.skip("timm is installed in this Python: the missing-peer path cannot be shown here")
    r = peers.timm_peer("swin_tiny_patch4_window7_224", batch=1, size=(224, 224), dtype="float32", repeats=1,
                        warmup=0, train=False, peer_python=sys.executable)
    assert r["peer"] == "timm" and r["status"].startswith("not installed") and "--peer-python" in r["status"]
    r = peers.timm_peer("swin_tiny_patch4_window7_224", batch=1, size=(224, 224), dtype="float32", repeats=1,
                        warmup=0, train=False, peer_python="/no/such/python")
    assert "does not exist" in r["status"]


def test_power_law_exponent_and_sizes():
    x = np.array([64.0, 128.0, 256.0, 512.0])
    assert fit.power_law_exponent(x, 3.0 * x ** 1.5) == pytest.approx(1.5)
    assert fit.power_law_exponent(x ** 2, 0.2 * x ** 2) == pytest.approx(1.0)  # linear in pixels
    assert fit.power_law_exponent([4, 4], [1.0, 2.0]) is None
    assert parse_size("256") == (256, 256) and parse_size("128x64") == (128, 64)


def test_loglog_plot_is_a_png_with_the_data(tmp_path):
    path = tmp_path / "p.png"
    plot.loglog_png(str(path), "title", "pixels", {"time": {"infer": [(64, 0.1), (256, 0.4), (1024, 1.6)]},
                                                   "memory": {"infer": [(64, 1.0), (1024, 16.0)]}})
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[1] > 2 * plot.WIDTH
    blue = np.all(image == (0x1F, 0x77, 0xB4), axis=-1)  # the first series' colour, in both panels
    half = image.shape[1] // 2
    assert blue[:, :half].sum() > 50 and blue[:, half:].sum() > 50


@pytest.mark.slow
def test_batch_sweep_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    argv = ["--model", "uoe_lm_tiny", "--size", "8", "--sweep", "batch", "--sweep-values", "1,4", "--repeats", "2",
            "--warmup", "1", "--no-cpu-peak", "--out", str(out)]
    code, stdout, _ = run_cli(benchmark.run, argv, capsys)
    assert code == 0, stdout
    rec = json.loads(out.read_text())
    points = rec["sweep"]["points"]
    assert [p["batch"] for p in points] == [1, 4] and all(p["infer_median_s"] > 0 for p in points)
    assert isinstance(rec["sweep"]["infer_time_exponent"], float)
    assert Image.open(rec["plot"]).format == "PNG"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FLAXZOO_OFFICIAL_MAXIM_SRC"),
                    reason="set FLAXZOO_OFFICIAL_MAXIM_SRC to a checkout of google-research/maxim")
def test_official_maxim_peer_has_our_parameter_count(tmp_path, capsys):
    out = tmp_path / "m.json"
    argv = ["--model", "maxim_tiny", "--size", "16", "--repeats", "1", "--warmup", "0", "--no-cpu-peak", "--peer",
            "official", "--official-src", os.environ["FLAXZOO_OFFICIAL_MAXIM_SRC"], "--out", str(out)]
    assert run_cli(benchmark.run, argv, capsys)[0] == 0
    rec = json.loads(out.read_text())
    official = rec["peers"][0]
    assert official["status"] == "ok" and official["params"] == rec["result"]["params"] and official["median_s"] > 0


def test_profile_names_the_costliest_ops_of_the_program(tmp_path, capsys):
    """--profile N: the N costliest XLA ops of each timed program, each tied to its HLO opcode and jax source op,
    shares that add up, in the JSON and on the terminal."""
    out = tmp_path / "p.json"
    code, stdout, _ = run_cli(benchmark.run, TINY_LM + ["--train", "--profile", "5", "--out", str(out)], capsys)
    assert code == 0, stdout
    rec = json.loads(out.read_text())
    for mode in ("infer", "train"):
        prof = rec["result"][mode]["profile"]
        assert prof["runs"] == 3 and prof["op_ms_per_run"] > 0 and len(prof["top"]) == 5
        shares = [row["share"] for row in prof["top"]]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001
        assert all(row["opcode"] != "?" and row["ms_per_run"] > 0 for row in prof["top"]), prof["top"]
        assert sum(r["share"] for r in prof["by_opcode"]) <= 1.0001
        assert any(row["source"] for row in prof["top"])  # tied back to the jax op that made it
        assert f"flaxzoo {mode} profile" in stdout
    table = "\n".join(report.profile_rows(report.load_records(str(tmp_path))))
    assert table.count("| uoe_lm_tiny |") == 2 and rec["command"] in table and "ms |" in table


def test_hlo_index_reads_tuple_shapes_and_fusion_kinds():
    from flaxzoo.bench.op_profile import hlo_index

    text = ('  %iota_reduce_fusion.1 = (f32[8,128]{1,0}, s32[8,128]{1,0}) fusion(%a, %b), kind=kLoop, '
            'calls=%fused_computation.53, metadata={op_name="jit(f)/Block/reduce" stack_frame_id=216}\n'
            '  ROOT %dot.2 = f32[4,64]{1,0} dot(%x, %y), lhs_contracting_dims={1}, metadata={op_name="jit(f)/dot_general"}\n')
    index = hlo_index(text)
    assert index["iota_reduce_fusion.1"] == {"opcode": "fusion:loop", "shape": "(f32[8,128], s32[8,128])",
                                             "source": "jit(f)/Block/reduce"}
    assert index["dot.2"]["opcode"] == "dot" and index["dot.2"]["shape"] == "f32[4,64]"


def test_no_bench_module_shadows_the_standard_library():
    """The peer scripts run as `python flaxzoo/bench/timm_peer.py`, so flaxzoo/bench/ is first on their sys.path:
    a file named like a stdlib module (profile.py) would replace it inside torch's imports."""
    folder = os.path.dirname(peers.__file__)
    names = {f[:-3] for f in os.listdir(folder) if f.endswith(".py")}
    assert not names & set(sys.stdlib_module_names), names & set(sys.stdlib_module_names)
