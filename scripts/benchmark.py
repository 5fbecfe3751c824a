"""Run every family benchmark (scripts/bench_*.py) in turn; `make bench` calls this.

Each benchmark prints its figures with the machine and the exact command; copy them into
BENCHMARKS.md. Pass family names to run only some: python scripts/benchmark.py swin uoe
"""
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent


def main(argv):
    scripts = sorted(HERE.glob("bench_*.py"))
    wanted = set(argv[1:])
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.call([sys.executable, str(script)]) != 0:
            failed.append(script.name)
    if failed:
        sys.exit(f"Benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv)
