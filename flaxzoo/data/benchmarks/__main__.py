"""python -m flaxzoo.data.benchmarks NAME --manual-dir DIR [--data-dir DIR]: prepare a benchmark dataset."""
from __future__ import annotations

from flaxzoo import cli


def run(argv: list[str]) -> int:
    from flaxzoo.data import benchmarks

    p = cli.ArgumentParser(prog="python -m flaxzoo.data.benchmarks", description=__doc__)
    p.add_argument("name", help=f"one of {', '.join(benchmarks.BUILDERS)}")
    p.add_argument("--manual-dir", help="the folder you downloaded (omit to print the expected layout)")
    p.add_argument("--data-dir", default=None, help="TFDS data folder (default: ~/tensorflow_datasets)")
    p.add_argument("--overwrite", action="store_true", help="rebuild a dataset that is already prepared")
    args = p.parse_args(argv)
    if args.manual_dir is None:
        print(benchmarks.describe(args.name))
        return cli.EXIT_OK
    builder = benchmarks.prepare(args.name, manual_dir=args.manual_dir, data_dir=args.data_dir,
                                 overwrite=args.overwrite)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"{args.name} prepared in {builder.data_dir}: {splits}")
    return cli.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(cli.call(run))
