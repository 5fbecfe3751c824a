"""Swin inference throughput (img/s) with random weights, the protocol of the timm CPU baseline
in shared/reference/swin.md (batch 8, 3 warm-up + 10 timed forwards, report batch / median).

    python scripts/bench_swin.py                                   # Swin-T, 224, batch 8, fp32
    python scripts/bench_swin.py --model swinv2_tiny_window8_256 --batch 16 --dtype bfloat16
"""
from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="swin_tiny_patch4_window7_224")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="image side (default: the preset's input size)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import flaxzoo
    from flaxzoo.models.convert.common import assign_params, model_param_shapes

    dtype = jnp.dtype(args.dtype)
    # Shape-only build + numpy weights: random init op by op is slow on CPU and irrelevant to speed.
    model = nnx.eval_shape(lambda: flaxzoo.create_model(args.model, rngs=nnx.Rngs(0), dtype=dtype))
    rng = np.random.default_rng(0)
    assign_params(model, {k: (0.02 * rng.standard_normal(s)).astype(np.float32)
                          for k, s in model_param_shapes(model).items()})
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    # Dropout RNG state is never read in eval mode; give the shape-only placeholders concrete values.
    rest = jax.tree.map(lambda a: jax.random.wrap_key_data(jnp.zeros(a.shape + (2,), jnp.uint32))
                        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else jnp.zeros(a.shape, a.dtype), rest)
    size = args.size or flaxzoo.get_spec(args.model).info["input_size"][0]

    @jax.jit
    def forward(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    x = jnp.asarray(rng.standard_normal((args.batch, size, size, 3)), dtype)
    t0 = time.perf_counter()
    forward(params, x).block_until_ready()
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        forward(params, x).block_until_ready()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        forward(params, x).block_until_ready()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"{args.model} {size}x{size} batch {args.batch} {args.dtype} on {jax.devices()[0].platform} "
          f"({jax.device_count()} devices, using 1): median {med:.3f} s/iter (min {min(times):.3f}), "
          f"{args.batch / med:.1f} img/s; first call (compile) {compile_s:.1f} s")


if __name__ == "__main__":
    main()
