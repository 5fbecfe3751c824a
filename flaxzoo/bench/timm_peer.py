"""timm's model timed like flaxzoo's (run as a separate program, in any Python that has torch and timm).

    /path/to/peer-venv/bin/python flaxzoo/bench/timm_peer.py --model swin_tiny_patch4_window7_224 --batch 8 \\
        --size 224x224 [--train] [--dtype bfloat16] [--compile] [--reuse-memory]

Imports nothing of flaxzoo (no jax), so torch can live in its own environment. Prints one JSON line with the
same fields as flaxzoo's figures (median_s, images_per_s, first_run_s, ...). Exit code 3 (and a JSON line with
"error") when torch or timm is missing. Random weights (`pretrained=False`); `--train` times forward, cross-entropy
backward and an AdamW step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

NOT_INSTALLED = 3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--size", required=True, help="HxW")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--train", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model first")
    p.add_argument("--kwargs", default="{}", help="JSON of architecture arguments for timm.create_model")
    p.add_argument("--reuse-memory", action="store_true", help="glibc keeps freed memory (flaxzoo/cpu_memory.py)")
    a = p.parse_args(argv)
    reused = False
    if a.reuse_memory:  # before torch allocates anything
        from peer_memory import apply  # this program's folder is on sys.path

        reused = apply(jax_program=False)
    try:
        import timm
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"no torch/timm in {sys.executable} ({e})"}))
        return NOT_INSTALLED
    h, w = (int(v) for v in a.size.split("x"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in json.loads(a.kwargs).items()}
    if (h, w) != (224, 224) and "swin" in a.model:
        kwargs["img_size"] = (h, w)
    model = timm.create_model(a.model, pretrained=False, **kwargs).to(device=device, dtype=dtype)
    x = torch.rand(a.batch, 3, h, w, device=device, dtype=dtype)
    runner = torch.compile(model) if a.compile else model
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if a.train:
        model.train()
        labels = torch.randint(0, model.num_classes, (a.batch,), device=device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(runner(x).float(), labels).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                runner(x)

    t = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t
    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(json.dumps({"peer": "timm", "model": a.model, "mode": "train" if a.train else "infer",
                      "timm": timm.__version__, "torch": torch.__version__, "device": device,
                      "torch_compile": a.compile, "threads": torch.get_num_threads(), "cpu_memory_reused": reused,
                      "first_run_s": first,
                      "median_s": median, "min_s": min(times), "images_per_s": a.batch / median,
                      "params": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
