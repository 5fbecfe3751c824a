"""Time and memory against image size (or sequence length) or batch, with the fitted scaling exponent.

Each point is one `measure.benchmark` (its own compilation). The exponent k fits time ~ pixels^k for a size
sweep (k = 1: linear in pixels; attention over the whole image would give 2) and time ~ batch^k for a batch
sweep (k < 1: the device is not yet full), on the fastest of the timed runs of each point (on a shared machine
the median also measures the other jobs). Memory is XLA's temporaries of the compiled program.
"""
from __future__ import annotations

from flaxzoo.bench import measure
from flaxzoo.bench.fit import power_law_exponent
from flaxzoo.validate import InputError

KINDS = ("size", "batch")


def parse_values(kind: str, text: str) -> list:
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(measure.parse_size(part) if kind == "size" else int(part))
        except (ValueError, InputError):
            raise InputError(f"--sweep-values must be comma-separated {'sizes (H or HxW)' if kind == 'size' else 'batch sizes'}, "
                             f"e.g. {'64,128,256' if kind == 'size' else '1,2,4,8'}; got {text!r}.") from None
    if len(values) < 2 or (kind == "batch" and min(values) < 1):
        raise InputError(f"--sweep-values needs at least two positive values, got {text!r}.")
    return values


def sweep(name: str, kind: str, values: list, *, batch: int, size, train: bool, dtype: str, repeats: int,
          warmup: int, peak: float | None, model_kwargs: dict | None = None) -> dict:
    if kind not in KINDS:
        raise InputError(f"--sweep must be one of {', '.join(KINDS)}, got {kind!r}.")
    lm = measure.task_of(name) == "lm"
    points = []
    for value in values:
        b, s = (batch, value) if kind == "size" else (value, size)
        r = measure.benchmark(name, batch=b, size=s, train=train, dtype=dtype, repeats=repeats, warmup=warmup,
                              peak=peak, model_kwargs=model_kwargs)
        s = tuple(s or measure.default_size(name))
        point = {"batch": b, "size": f"{s[0]}x{s[1]}", "x": (s[0] if lm else s[0] * s[1]) if kind == "size" else b}
        for mode in ("infer", "train"):
            if mode in r:
                point[f"{mode}_median_s"] = r[mode]["median_s"]
                point[f"{mode}_min_s"] = r[mode]["min_s"]
                point[f"{mode}_compile_s"] = r[mode]["compile_s"]
                point[f"{mode}_temporaries_mib"] = r[mode]["memory"].get("temporaries_mib")
        points.append(point)
    result = {"kind": kind, "x": ("sequence length" if lm else "pixels") if kind == "size" else "batch",
              "points": points}
    for mode in ("infer", "train"):
        key = f"{mode}_min_s"  # the least disturbed run: on a shared machine the median carries the others' load
        if key in points[0]:
            result[f"{mode}_time_exponent"] = power_law_exponent([p["x"] for p in points], [p[key] for p in points])
    return result


def plot(result: dict, path: str, title: str) -> None:
    from flaxzoo.bench.plot import loglog_png

    modes = [m for m in ("infer", "train") if f"{m}_median_s" in result["points"][0]]
    def label(m):
        k = result.get(f"{m}_time_exponent")
        return m if k is None else f"{m} (k={k:.2f})"

    time_series = {label(m): [(p["x"], p[f"{m}_min_s"]) for p in result["points"]] for m in modes}
    mem_series = {m: [(p["x"], p[f"{m}_temporaries_mib"] or 0) for p in result["points"]] for m in modes}
    ticks = {p["x"]: p["size"] for p in result["points"]} if result["x"] == "pixels" else None
    loglog_png(path, title, result["x"] + (" (HxW)" if ticks else ""),
               {"seconds per step (fastest run)": time_series, "XLA temporaries (MiB)": mem_series}, xticks=ticks)
