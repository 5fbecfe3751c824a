"""Run every family benchmark (scripts/bench_*.py) in turn; `make bench` calls this.

    python scripts/benchmark.py              # all of them (minutes on a CPU)
    python scripts/benchmark.py swin uoe     # only these families

Each benchmark prints its figures with the machine and the exact command; copy them into
BENCHMARKS.md. Each one has its own --help (python scripts/bench_swin.py --help).
"""
import pathlib
import subprocess
import sys

from flaxzoo import cli

HERE = pathlib.Path(__file__).parent
FAMILIES = sorted(s.stem.removeprefix("bench_") for s in HERE.glob("bench_*.py"))


def run(argv):
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("families", nargs="*", metavar="FAMILY", help=f"benchmarks to run: {', '.join(FAMILIES)} (default: all)")
    args = p.parse_args(argv)
    unknown = [f for f in args.families if f not in FAMILIES]
    if unknown:
        raise cli.UsageError(f"no benchmark for {', '.join(unknown)}: choose from {', '.join(FAMILIES)}.")
    failed = []
    for family in args.families or FAMILIES:
        script = HERE / f"bench_{family}.py"
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.call([sys.executable, str(script)]) != 0:
            failed.append(script.name)
    if failed:
        print(f"Benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return cli.EXIT_FAILED
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.call(run))
