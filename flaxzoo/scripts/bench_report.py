"""Regenerate the benchmark-CLI tables of BENCHMARKS.md from bench/*.json.

    flaxzoo-bench-report                      # rewrites only the generated section of BENCHMARKS.md
    flaxzoo-bench-report --check              # exit 1 if BENCHMARKS.md is out of date (nothing written)

(`python scripts/bench_report.py ...` is the same program; `make bench` runs it after the suite.)
The rest of BENCHMARKS.md is never touched; see flaxzoo.bench.report.
"""
from __future__ import annotations

from flaxzoo import cli


def run(argv) -> int:
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--bench-dir", default="bench", help="folder of scripts/benchmark.py JSON files")
    p.add_argument("--markdown", default="BENCHMARKS.md", help="the file whose generated section is rewritten")
    p.add_argument("--check", action="store_true", help="only check that the section is up to date")
    a = p.parse_args(argv)
    from flaxzoo.bench.report import regenerate

    ok = regenerate(a.markdown, a.bench_dir, check=a.check)
    if a.check and not ok:
        print(f"{a.markdown} is out of date with {a.bench_dir}/*.json: run python scripts/bench_report.py.")
        return cli.EXIT_FAILED
    print(f"{a.markdown}: {'up to date' if a.check else 'regenerated'} from {a.bench_dir}/*.json")
    return cli.EXIT_OK


def main(argv=None) -> int:
    return cli.call(run, argv)
