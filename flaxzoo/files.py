"""Writing files so that nothing is ever half-written or silently replaced.

Every file flaxzoo writes for a user (weights, run records, restored images) goes through
`atomic_path`: the content is written to a fresh temporary name in the destination folder (so
the final rename is atomic and no other file is touched), given the permissions any other file
of this process gets (mkstemp makes it private), then renamed over the destination.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


def umask() -> int:
    """The process umask, read without changing it where Linux allows (changing it is not thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it becomes `path`, on failure it is removed."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (text or bytes) to `path` through `atomic_path`, synced to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
