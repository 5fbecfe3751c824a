"""Predefined benchmark sets: `--suite cpu` is what `make bench` runs (under 10 minutes on 2 CPU cores).

Small presets, so compilation (which dominates on a CPU) stays short; one entry per family, a same-run peer
where there is one, and one sweep with its PNG. Each entry is the argv of one `scripts/benchmark.py` run and
writes bench/<key>.json.
"""

SUITES = {
    "cpu": {
        "swin_test_tiny_b8": ["--model", "swin_test_tiny", "--batch", "8", "--train", "--repeats", "5"],
        "uoe_lm_tiny_dense_b8": ["--model", "uoe_lm_tiny", "--size", "128", "--batch", "8", "--train",
                                 "--peer", "dense", "--repeats", "5"],
        "maxim_tiny_64_b2": ["--model", "maxim_tiny", "--size", "64", "--batch", "2", "--repeats", "3"],
        "uoe_lm_tiny_batch_sweep": ["--model", "uoe_lm_tiny", "--size", "128", "--sweep", "batch",
                                    "--sweep-values", "1,2,4,8,16", "--repeats", "20"],
        "maxim_tiny_size_sweep": ["--model", "maxim_tiny", "--sweep", "size", "--sweep-values", "32,64,128",
                                  "--repeats", "5"],
    },
}
