"""Where a compiled program spends its time: XLA ops ranked by device time, from a jax.profiler trace.

`top_ops(compiled, call, runs)` traces `runs` calls of an already compiled (and warmed-up) program, sums the
trace events of each XLA instruction, and names it: its HLO opcode (a fusion's kind, e.g. a loop fusion or a
dot library call) and the jax source op recorded in its metadata (`op_name`, e.g.
`jit(forward)/.../dot_general`), so a row reads as a line of the model. On a CPU an instruction split across
threads is counted once per thread (CPU time, which is what the two cores share); on a GPU the events are
kernels on the device's streams.
"""
from __future__ import annotations

import collections
import glob
import re
import tempfile

import jax

# `%fusion.12 = f32[8,56,56,96]{3,2,1,0} fusion(...), kind=kLoop, calls=..., metadata={op_name="..." ...}`;
# the shape may be a tuple, `(f32[8,128]{1,0}, s32[8,128]{1,0})`.
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\([^=]*?\)|\S+)\s+([\w\-]+)\((.*)$")
_KIND = re.compile(r"kind=(k\w+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_COMMENT = re.compile(r"/\*.*?\*/")
# Instructions that only run others (a cond's branch, a loop's body): their trace events span the events of
# the ops inside them, which are counted on their own.
_CONTAINERS = ("conditional", "while", "call")
_SKIP = ("ThreadpoolListener", "ThunkExecutor", "SlinkyThreadPool", "end: ", "PjitFunction", "$")


def hlo_index(hlo_text: str) -> dict[str, dict]:
    """instruction name -> {'opcode', 'shape', 'source'} for every instruction of the compiled HLO."""
    index = {}
    for line in hlo_text.splitlines():
        m = _INSTRUCTION.match(_COMMENT.sub("", line))  # long tuple shapes carry `/*index=5*/` comments
        if not m:
            continue
        name, shape, opcode, rest = m.groups()
        kind = _KIND.search(rest)
        op_name = _OP_NAME.search(rest)
        index[name] = {"opcode": f"{opcode}:{kind.group(1)[1:].lower()}" if kind else opcode,
                       "shape": re.sub(r"\{[^}]*\}", "", shape), "source": op_name.group(1) if op_name else ""}
    return index


def _events(trace_dir: str):
    from jax.profiler import ProfileData

    for path in glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True):
        for plane in ProfileData.from_file(path).planes:
            for line in plane.lines:
                if line.name == "python":
                    continue
                for event in line.events:
                    if event.duration_ns > 0 and not event.name.startswith(_SKIP):
                        yield event.name, event.duration_ns


def top_ops(compiled, call, runs: int = 3, top: int = 15) -> dict:
    """Trace `runs` calls of `call()` (which runs `compiled` once and blocks); the `top` costliest ops."""
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(runs):
                call()
        totals = collections.Counter()
        for name, ns in _events(trace_dir):
            totals[name] += ns
    index = hlo_index(compiled.as_text())
    totals = collections.Counter({name: ns for name, ns in totals.items()
                                  if index.get(name, {}).get("opcode") not in _CONTAINERS})
    total_ns = sum(totals.values())
    by_opcode, by_primitive = collections.Counter(), collections.Counter()
    for name, ns in totals.items():
        info = index.get(name, {})
        by_opcode[info.get("opcode", "other")] += ns
        by_primitive[info.get("source", "").rsplit("/", 1)[-1] or "other"] += ns

    def cost(ns):
        return {"ms_per_run": round(ns / runs / 1e6, 3), "share": round(ns / total_ns, 4) if total_ns else 0.0}

    ops = []
    for name, ns in totals.most_common(top):
        info = index.get(name, {})
        ops.append({"op": name, "opcode": info.get("opcode", "?"), "shape": info.get("shape", ""),
                    "source": _short_source(info.get("source", "")), **cost(ns)})
    return {"runs": runs, "op_ms_per_run": round(total_ns / runs / 1e6, 3), "top": ops,
            "by_opcode": [{"opcode": k, **cost(v)} for k, v in by_opcode.most_common(8)],
            # The jax primitive each op was made from (a fusion is named after its root): where a model of
            # thousands of small ops spends its time, e.g. MAXIM's transposes around the token-mixing matmuls.
            "by_primitive": [{"primitive": k, **cost(v)} for k, v in by_primitive.most_common(10)]}


def _short_source(op_name: str) -> str:
    """'jit(forward)/jit(main)/SwinTransformer/.../dot_general' -> the last four path parts: enough to place it."""
    parts = [p for p in op_name.split("/") if not p.startswith(("jit(", "pjit(", "jvp(", "transpose(jvp"))]
    return "/".join(parts[-4:])


def format_table(label: str, profile: dict) -> str:
    """Plain text for the terminal: one line per op."""
    lines = [f"{label}: {profile['op_ms_per_run']:.1f} ms of op time per call (over {profile['runs']} calls)"]
    for row in profile["top"]:
        lines.append(f"  {100 * row['share']:5.1f}%  {row['ms_per_run']:9.2f} ms  {row['opcode']:22s} "
                     f"{row['shape']:28s} {row['source']}")
    lines.append("  by opcode: " + ", ".join(f"{r['opcode']} {100 * r['share']:.0f}%" for r in profile["by_opcode"]))
    lines.append("  by jax primitive: " + ", ".join(f"{r['primitive']} {100 * r['share']:.0f}%"
                                                    for r in profile["by_primitive"]))
    return "\n".join(lines)
