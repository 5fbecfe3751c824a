"""`--reuse-memory` of the peer programs (timm_peer.py, official_maxim.py): the memory settings flaxzoo's side of
the same run used (flaxzoo/cpu_memory.py), so both sides allocate alike. Loaded by its path: the peers import
nothing of flaxzoo (timm's may run in a torch venv where flaxzoo is not installed)."""
from __future__ import annotations

import importlib.util
import os


def apply(jax_program: bool) -> bool:
    """jax_program: also run CPU programs on the calling thread (the official MAXIM code); torch runs its ops
    there anyway, so timm needs only glibc's settings. True when applied."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "cpu_memory.py")
    spec = importlib.util.spec_from_file_location("_flaxzoo_cpu_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reuse_step_memory() if jax_program else module.keep_glibc_heap()
