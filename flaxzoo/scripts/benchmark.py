"""Benchmark any registered model: inference and train-step throughput, compile time, memory, FLOPs, MFU.

    flaxzoo-benchmark --model swin_tiny_patch4_window7_224 --batch 8 --out bench/swin_t.json
    flaxzoo-benchmark --model swin_tiny_patch4_window7_224 --batch 64 --dtype bfloat16 --train --peer timm \\
        --peer-python /path/to/torch-venv/bin/python --out swin_t_gpu.json
    flaxzoo-benchmark --model uoe_lm_tiny --size 256 --batch 8 --train --peer dense --out uoe.json
    flaxzoo-benchmark --model maxim_tiny --sweep size --sweep-values 64,128,256 --out maxim_sweep.json  # + .png
    flaxzoo-benchmark --suite cpu --out-dir bench --overwrite        # what `make bench` runs (minutes on a CPU)

(`python scripts/benchmark.py ...` is the same program.) --size is H or HxW pixels for image models, the
sequence length for language models (default: the preset's input size, 256 otherwise). Each figure is the
median of --repeats runs after --warmup runs of the compiled program; the compile time is that of the ahead-of-
time `jit(...).lower(...).compile()`. FLOPs are XLA's cost analysis of that program; MFU is against the device's
bf16 peak (GPU/TPU table) or, on a CPU, a float32 matmul measured in the same run. The JSON records the machine,
its load, the command and the date; `python scripts/bench_report.py` turns bench/*.json into BENCHMARKS.md tables.
An existing --out is kept unless --overwrite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from flaxzoo import cli
from flaxzoo.files import write_atomic

FORMAT = "flaxzoo-bench-v1"


def build_parser() -> cli.ArgumentParser:
    from flaxzoo.bench.peers import PEERS
    from flaxzoo.bench.suite import SUITES
    from flaxzoo.bench.sweep import KINDS

    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--model", help="registered model name (flaxzoo.list_models())")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--size", help="H or HxW (images) or sequence length (language models)")
    p.add_argument("--train", action="store_true", help="also time the training loop's train step (AdamW)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs after the first")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate flaxzoo and each peer this many times (medians of the round medians): "
                        "machine load then hits both sides alike")
    p.add_argument("--model-kwargs", metavar="K=V,...",
                   help="constructor arguments for the model, e.g. expert_impl=grouped,dropless=True or "
                        "attn_impl=fused,remat=dots_no_batch (values are Python literals or strings)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after timing, trace 3 more runs and print (and keep in the JSON) the N costliest XLA ops")
    p.add_argument("--peer", choices=PEERS, action="append", default=[],
                   help="also time this peer in the same run (timm: Swin; official: MAXIM with --official-src; dense: UoE LMs)")
    p.add_argument("--peer-python", help="Python with torch + timm for --peer timm (default: this one)")
    p.add_argument("--official-src", help="checkout of google-research/maxim for --peer official")
    p.add_argument("--torch-compile", action="store_true", help="torch.compile the timm peer")
    p.add_argument("--sweep", choices=KINDS, help="time against size or batch instead of one point")
    p.add_argument("--sweep-values", help="comma-separated sizes (64,128,256) or batches (1,2,4,8)")
    p.add_argument("--plot", help="PNG of the sweep (default: --out with .png)")
    p.add_argument("--no-cpu-peak", action="store_true", help="on a CPU, skip the matmul peak (no MFU)")
    p.add_argument("--out", help="JSON file to write")
    p.add_argument("--suite", choices=sorted(SUITES), help="run a predefined set, one JSON per entry in --out-dir")
    p.add_argument("--out-dir", default="bench", help="folder for --suite (default bench/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def check_out(path: str | None, overwrite: bool, suffix: str = ".json") -> None:
    if path is None:
        return
    if not path.endswith(suffix):
        raise cli.UsageError(f"{path} must end in {suffix}.")
    if os.path.isdir(path):
        raise cli.UsageError(f"{path} is a folder; pass a file name ending in {suffix}.")
    if os.path.exists(path) and not overwrite:
        raise cli.UsageError(f"{path} already exists; pass --overwrite to replace it, or another name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise cli.UsageError(f"The folder of {path} does not exist; create it first.")


def _line(label: str, r: dict) -> str:
    unit = "tokens" if "tokens_per_s" in r else "images"
    text = (f"{label:28s} {r[f'{unit}_per_s']:10.4g} {unit}/s  median {r['median_s'] * 1e3:9.2f} ms  "
            f"compile {r.get('compile_s', float('nan')):6.1f} s")
    if "flops" in r:
        text += f"  {r['flops'] / 1e9:.3g} GFLOP"
    if "mfu" in r:
        text += f"  MFU {100 * r['mfu']:.2f}%"
    return text


def run_suite(args, argv) -> int:
    from flaxzoo.bench.suite import SUITES

    if args.model or args.out:
        raise cli.UsageError("--suite runs its own models and files; drop --model/--out (use --out-dir).")
    os.makedirs(args.out_dir, exist_ok=True)
    failed = []
    t0 = time.perf_counter()
    for stem, entry in SUITES[args.suite].items():
        out = os.path.join(args.out_dir, f"{stem}.json")
        if os.path.exists(out) and not args.overwrite:
            raise cli.UsageError(f"{out} already exists; pass --overwrite to replace the suite's files.")
        # A fresh process per entry: its peak memory is its own, and one failure does not stop the rest.
        cmd = [sys.executable, "-m", "flaxzoo.scripts.benchmark", *entry, "--out", out, "--overwrite"]
        print(f"=== {stem}: {' '.join(entry)}", flush=True)
        if subprocess.call(cmd) != 0:
            failed.append(stem)
    print(f"Suite {args.suite}: {len(SUITES[args.suite]) - len(failed)} of {len(SUITES[args.suite])} in "
          f"{time.perf_counter() - t0:.0f} s; JSON and PNG in {args.out_dir}/", flush=True)
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return cli.EXIT_FAILED
    return cli.EXIT_OK


def run(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.suite:
        return run_suite(args, argv)
    if not args.model:
        raise cli.UsageError("Pass --model NAME (see flaxzoo.list_models()) or --suite cpu.")
    if args.batch < 1 or args.repeats < 1 or args.rounds < 1 or args.warmup < 0:
        raise cli.UsageError(f"--batch, --repeats and --rounds must be at least 1 and --warmup at least 0; got "
                             f"{args.batch}, {args.repeats}, {args.rounds}, {args.warmup}.")
    if args.profile < 0:
        raise cli.UsageError(f"--profile N keeps the N costliest ops; N must be at least 0, got {args.profile}.")
    if (args.rounds > 1 or args.profile) and args.sweep:
        raise cli.UsageError("--rounds and --profile work at one point; drop them with --sweep.")
    if args.sweep_values and not args.sweep:
        raise cli.UsageError("--sweep-values needs --sweep size or --sweep batch.")
    if args.plot and not args.sweep:
        raise cli.UsageError("--plot draws a sweep; add --sweep size or --sweep batch.")
    check_out(args.out, args.overwrite)
    plot_path = args.plot or (args.out[:-len(".json")] + ".png" if args.sweep and args.out else None)
    if args.sweep:
        check_out(plot_path, args.overwrite, ".png")

    from flaxzoo import cpu_memory

    cpu_memory.reuse_step_memory()  # as the training loop runs on a CPU; its peers get the same (peers.py)
    import flaxzoo
    from flaxzoo.bench import machine, measure, op_profile, peers, sweep

    spec = flaxzoo.get_spec(args.model)  # an unknown name is one message, before anything is built
    size = measure.parse_size(args.size) if args.size else None
    model_kwargs = measure.parse_model_kwargs(args.model_kwargs)
    values = None
    if args.sweep:
        values = sweep.parse_values(args.sweep, args.sweep_values or ("1,2,4,8" if args.sweep == "batch"
                                                                     else "64,128,256"))
    for peer in args.peer:
        peers.check_peer(peer, args.model, args.official_src)
    measure.task_of(args.model)
    for s in ([size] if size else []) + (values if args.sweep == "size" else []):
        measure.check_size(args.model, s)
    peak, peak_source = machine.peak_flops(measure_cpu=not args.no_cpu_peak)
    record = {"format": FORMAT, "command": machine.command_line(argv), "date": machine.now_utc(),
              "machine": machine.describe(), "model": args.model, "family": spec.family, "batch": args.batch,
              "size": list(size or measure.default_size(args.model)), "dtype": args.dtype, "train": args.train,
              "peak_flops": peak, "peak_flops_source": peak_source, "model_kwargs": model_kwargs}
    common = dict(batch=args.batch, size=size, train=args.train, dtype=args.dtype, repeats=args.repeats,
                  warmup=args.warmup)
    if args.sweep:
        result = sweep.sweep(args.model, args.sweep, values, peak=peak, model_kwargs=model_kwargs, **common)
        record["sweep"] = result
        for point in result["points"]:
            print(f"{args.model} batch {point['batch']} size {point['size']}: "
                  + "  ".join(f"{m} {point[f'{m}_median_s'] * 1e3:.2f} ms" for m in ("infer", "train")
                              if f"{m}_median_s" in point), flush=True)
        print("exponents: " + ", ".join(f"{m} {result[f'{m}_time_exponent']:.2f}" for m in ("infer", "train")
                                        if result.get(f"{m}_time_exponent") is not None))
        if plot_path:
            sweep.plot(result, plot_path, f"{args.model} {args.dtype}, {args.sweep} sweep ({record['command']})")
            record["plot"] = plot_path
            print(f"plot: {plot_path}")
    else:
        runs = {peer: {"infer": [], "train": []} for peer in args.peer}

        def peers_turn(mode):  # after each round of flaxzoo's `mode`: every peer once, same mode
            for peer in args.peer:
                if peers.times_mode(peer, mode):
                    runs[peer][mode].append(peers.run_peer(
                        peer, args.model, mode=mode, peer_python=args.peer_python, torch_compile=args.torch_compile,
                        official_src=args.official_src, peak=peak, model_kwargs=model_kwargs,
                        **{**common, "train": mode == "train"}))

        result = measure.benchmark(args.model, peak=peak, rounds=args.rounds, between=peers_turn,
                                   model_kwargs=model_kwargs, profile_top=args.profile, **common)
        record["result"] = result
        record["rounds"] = args.rounds
        print(f"{args.model}: {result['params']:,} params on {record['machine']['device_kind']} "
              f"(load {record['machine']['load_avg_1min']}); peak {peak_source}")
        for mode in ("infer", "train"):
            if mode in result:
                print(_line(f"flaxzoo {mode}", result[mode]), flush=True)
                if "profile" in result[mode]:
                    print(op_profile.format_table(f"flaxzoo {mode} profile", result[mode]["profile"]), flush=True)
        record["peers"] = [r for peer in args.peer for r in peers.collect(peer, runs[peer])]
        for r in record["peers"]:
            if r["status"] != "ok":
                print(f"peer {r['peer']}: {r['status']}; reporting flaxzoo alone.", flush=True)
            elif r["peer"] in ("timm", "official"):
                print(_line(f"{r['peer']} {r['mode']}", r), flush=True)
            else:
                for mode in ("infer", "train"):
                    if mode in r:
                        print(_line(f"{r['peer']} {mode}", r[mode]), flush=True)
        for mode in ("infer", "train"):
            for r in record["peers"]:
                theirs = r.get(mode) if r["peer"] == "dense" else (r if r.get("mode") == mode else None)
                if r["status"] == "ok" and theirs and mode in result:
                    print(f"{mode}: flaxzoo / {r['peer']} = {theirs['median_s'] / result[mode]['median_s']:.2f}x "
                          f"(median over {args.rounds} round{'s' * (args.rounds > 1)})", flush=True)
    record["machine"]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    if args.out:
        write_atomic(args.out, json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return cli.EXIT_OK


def main(argv=None) -> int:
    return cli.call(run, argv)


if __name__ == "__main__":
    sys.exit(main())
