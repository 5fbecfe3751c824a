"""Tokens/s of a UoE language model against a dense transformer with the same parameters.

Both models run in the same process on the same batch and sequence length, jitted, timed
after warm-up: a forward pass and a full training step (loss, gradients, SGD update). The UoE
model routes top-2 of 4 heads (SMHA) and top-2 of 4 MLP experts (UoME), capacity factor 1,
so each head and expert sees half the tokens. The dense model is the same architecture with
every expert on every token, written as a plain MHA + MLP transformer.

Plain JAX + Flax only (no grain/tfds/ml_collections/optax), so it runs on a bare GPU box with the
repository on the path (`pip install -e .`, or `PYTHONPATH=.` from the repository root):

    python scripts/bench_uoe.py --preset tiny --batch 8 --seq 256 --steps 10       # CPU, ~1 min
    python scripts/bench_uoe.py --preset wt103 --batch 16 --seq 1024 --steps 20    # GPU
"""
from __future__ import annotations

import json
import platform
import sys
import time

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo import cli
from flaxzoo.bench.dense_lm import DenseLM
from flaxzoo.models.uoe import UoELM

# dim, depth, heads (= SMHA experts), MLP hidden (= 4 UoME experts), vocab
PRESETS = {
    "tiny": dict(dim=128, depth=2, heads=4, hidden=512, vocab=256),
    "small": dict(dim=512, depth=6, heads=4, hidden=2048, vocab=32000),
    "wt103": dict(dim=400, depth=16, heads=4, hidden=2100, vocab=32000),  # the paper's LM widths, 4 heads
    "base": dict(dim=768, depth=12, heads=4, hidden=3072, vocab=32000),
}


def build(kind, cfg, mode, dtype):
    rngs = nnx.Rngs(0)
    if kind == "dense":
        return DenseLM(cfg["vocab"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["hidden"], dtype=dtype, rngs=rngs)
    return UoELM(cfg["vocab"], cfg["dim"], cfg["depth"], cfg["heads"], cfg["hidden"], head_top_k=cfg["heads"] // 2,
                 num_experts=4, top_k=2, mode=mode, pre_norm=True, rope="slot", dtype=dtype, rngs=rngs)


def count_params(model):
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def timed(fn, args, steps, warmup):
    out = None
    for _ in range(warmup):
        out = fn(*args)
    jax.block_until_ready(out)
    t = time.perf_counter()
    for _ in range(steps):
        out = fn(*args)
        args = (out[0],) + tuple(args[1:]) if isinstance(out, tuple) else args
    jax.block_until_ready(out)
    return time.perf_counter() - t


def bench(kind, cfg, args, ids):
    from flaxzoo.layers.experts import router_loss

    model = build(kind, cfg, args.mode, jnp.bfloat16 if args.bf16 else None)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def forward(params, ids):
        return nnx.merge(graphdef, params, rest, copy=True)(ids)

    def loss(params, ids):
        m = nnx.merge(graphdef, params, rest, copy=True)
        logits = m(ids[:, :-1])
        logp = jax.nn.log_softmax(logits)
        ce = -jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1).mean()
        return ce + router_loss(m)

    @jax.jit
    def train_step(params, ids):  # plain SGD: the optimizer costs the same for both models
        value, grads = jax.value_and_grad(loss)(params, ids)
        return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), value

    tokens = args.batch * args.seq
    t_fwd = timed(lambda p, i: forward(p, i), (params, ids[:, :-1]), args.steps, args.warmup)
    t_train = timed(train_step, (params, ids), args.steps, args.warmup)
    return dict(model=kind, params=int(count_params(model)), forward_tokens_per_s=tokens * args.steps / t_fwd,
                train_tokens_per_s=tokens * args.steps / t_train)


def run(argv):
    p = cli.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mode", default="trained", choices=("trained", "faithful"))
    p.add_argument("--bf16", action="store_true", help="bfloat16 compute (params stay float32)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    cfg = PRESETS[args.preset]
    ids = jax.random.randint(jax.random.key(0), (args.batch, args.seq + 1), 0, cfg["vocab"])
    results = [bench(kind, cfg, args, ids) for kind in ("dense", "uoe")]
    device = jax.devices()[0]
    print(f"# {args.preset} {cfg} batch {args.batch} seq {args.seq} steps {args.steps} mode {args.mode} "
          f"bf16 {args.bf16} on {device.platform}:{device.device_kind} ({platform.processor() or platform.machine()})")
    print(f"{'model':6s} {'params':>12s} {'fwd tok/s':>12s} {'train tok/s':>12s}")
    for r in results:
        print(f"{r['model']:6s} {r['params']:12,d} {r['forward_tokens_per_s']:12,.0f} {r['train_tokens_per_s']:12,.0f}")
    dense, uoe = results
    print(f"uoe/dense speed-up: forward {uoe['forward_tokens_per_s'] / dense['forward_tokens_per_s']:.2f}x, "
          f"train {uoe['train_tokens_per_s'] / dense['train_tokens_per_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), config=cfg, device=str(device), results=results), f, indent=2)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.call(run))
