"""Benchmarks: throughput, compile time, memory, FLOPs and MFU of any registered model (`scripts/benchmark.py`).

measure.py (one model, one shape), machine.py (what ran it, peak FLOP/s), sweep.py (time against size or batch,
fitted exponent), plot.py (PNG with PIL), peers.py (timm, the dense UoE counterpart), report.py (BENCHMARKS.md
tables from bench/*.json).
"""
