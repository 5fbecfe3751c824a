"""Reading weight files (.safetensors, .npz, torch .pth/.pt/.bin/.ckpt) into a flat {name: array} dict.

Never runs code from a file: npz is read with `allow_pickle=False`, torch files only with
`weights_only=True`, and an object (pickle) inside either is refused, never "retried unsafely".
Every problem (missing, a directory, empty, truncated, another format under the wrong extension, a
pickle, no arrays) raises one `WeightsFileError` naming the file and what to do, checked from the file's
first bytes before any library sees it; messages from the libraries that suggest `weights_only=False`
or `allow_pickle=True` are replaced, never passed on. CLIs print `str(error)` and exit 2.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
from typing import Mapping

import numpy as np

StateDict = dict[str, np.ndarray]

SAFETENSORS_EXT = (".safetensors",)
NPZ_EXT = (".npz",)
TORCH_EXT = (".pth", ".pt", ".bin", ".ckpt")
_NESTED_KEYS = ("state_dict", "model", "module", "params", "model_state")
_NEVER = ("weights_only", "allow_pickle")  # library advice we never pass on


class WeightsFileError(ValueError):
    """A weights file that cannot be read; the message names the file and the problem."""


class WeightsFileNotFoundError(WeightsFileError, FileNotFoundError):
    """The path does not exist."""


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """Load a flat {name: array} dict from .safetensors, .npz or a torch .pth/.pt/.bin/.ckpt file."""
    path, fmt = _format_of(path)
    return _nonempty(path, _FORMATS[fmt][1](path))


def check_weights_file(path: str | os.PathLike) -> str:
    """The cheap part of `read_state_dict`, reading no arrays (a CLI can fail fast before building a model):
    path, extension, size, and the safetensors header / the zip directory. Returns the path as a str."""
    path, fmt = _format_of(path)
    _FORMATS[fmt][0](path)
    return path


def _format_of(path) -> tuple[str, str]:
    path = _check_path(path)
    lower = path.lower()
    for fmt, extensions in (("safetensors", SAFETENSORS_EXT), ("npz", NPZ_EXT), ("torch", TORCH_EXT)):
        if lower.endswith(extensions):
            _check_not_empty(path)
            return path, fmt
    kind = describe_bytes(_head(path))
    hint = f" The file looks like {kind}{_rename_hint(kind)}." if kind else ""
    pickle_note = " Pickle files are never loaded." if lower.endswith((".pkl", ".pickle")) else ""
    raise WeightsFileError(f"Unsupported checkpoint format for {path}: use .safetensors, .npz, or a torch "
                           f".pth/.pt/.bin file (read with tensors only).{pickle_note}{hint}")


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `__metadata__` of a safetensors file (empty if none), after the same checks as `read_state_dict`."""
    path = _check_path(path)
    _check_not_empty(path)
    return dict(_safetensors_header(path).get("__metadata__") or {})


# ----------------------------------------------------------------------------- checks shared by all formats
def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise WeightsFileError(f"A weights path must be a string or os.PathLike; got {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.exists(path):
        hint = " (a leading ~ is not expanded here: use os.path.expanduser)" if path.startswith("~") else ""
        raise WeightsFileNotFoundError(f"Checkpoint file not found: {path}{hint}")
    if os.path.isdir(path):
        inside = sorted(n for n in os.listdir(path) if n.lower().endswith(SAFETENSORS_EXT + NPZ_EXT + TORCH_EXT))
        found = f" It holds: {', '.join(inside[:5])}." if inside else " It holds no .safetensors/.npz/.pth files."
        raise WeightsFileError(f"{path} is a directory; pass the weights file inside it.{found}")
    return path


def _check_not_empty(path: str) -> None:
    if os.path.getsize(path) == 0:
        raise WeightsFileError(f"{path} is empty (0 bytes): the download or save did not finish. Fetch or save it again.")


def _head(path: str, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:  # permissions, a FIFO, a dead network mount
        raise WeightsFileError(f"{path} cannot be read ({e.strerror or e}).") from None


def describe_bytes(head: bytes) -> str | None:
    """What a file's first bytes say it is, in words (None if unknown)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive (an .npz or a torch .pth file)"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (e.g. Keras .h5)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights (run `git lfs pull`)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (e.g. a legacy torch file)"
    if len(head) > 9 and head[8:10] in (b'{"', b"{ ") and struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return "a safetensors file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON/text file"
    if head and all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        return "a text file"
    return None


def _rename_hint(kind: str) -> str:
    if kind == "a safetensors file":
        return ": rename it to .safetensors"
    if kind.startswith("a zip archive"):
        return ": rename it to .npz or .pth to match how it was saved"
    if kind == "a single .npy array":
        return ": load it with np.load and save named arrays with np.savez or safetensors"
    return ""


def _wrong_format(path: str, expected: str) -> WeightsFileError:
    kind = describe_bytes(_head(path))
    got = f"it looks like {kind}{_rename_hint(kind)}" if kind else "its first bytes match no known format"
    return WeightsFileError(f"{path} is not {expected}: {got}.")


def _reason(e: BaseException) -> str:
    """A library's message, first line, unless it gives advice we never follow."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return "" if any(w in str(e) for w in _NEVER) else f" ({text})"


def _nonempty(path: str, state: StateDict) -> StateDict:
    if not state:
        raise WeightsFileError(f"{path} holds no arrays; it is not a weights file (or was saved empty).")
    return state


# ----------------------------------------------------------------------------- safetensors
def _safetensors_header(path: str) -> dict:
    size = os.path.getsize(path)
    head = _head(path, 8)
    if len(head) < 8:
        raise _wrong_format(path, "a safetensors file")
    n = struct.unpack("<Q", head)[0]
    if n + 8 > size:
        if _head(path, 9)[8:9] != b"{":  # a real header starts with a JSON object, truncated or not
            raise _wrong_format(path, "a safetensors file")
        raise WeightsFileError(f"{path} is truncated or not a safetensors file: its header claims {n} bytes, "
                               f"the file has {size}. Download or save it again.")
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise _wrong_format(path, "a safetensors file") from None
    if not isinstance(header, dict):
        raise _wrong_format(path, "a safetensors file")
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (TypeError, KeyError, IndexError, ValueError):
        raise WeightsFileError(f"{path} has a corrupted safetensors header (a tensor entry without valid "
                               f"data_offsets). Download or save it again.") from None
    if max(ends, default=0) > size - 8 - n:
        raise WeightsFileError(f"{path} is truncated: its tensors need {max(ends) + 8 + n} bytes, the file has "
                               f"{size}. Download or save it again.")
    return header


def _read_safetensors(path: str) -> StateDict:
    from safetensors.numpy import load_file

    _safetensors_header(path)
    try:
        return dict(load_file(path))
    except Exception as e:  # SafetensorError and friends: corrupted beyond the header checks
        raise WeightsFileError(f"{path} is a corrupted safetensors file{_reason(e)}. Download or save it again.") \
            from None


# ----------------------------------------------------------------------------- npz
def _check_npz(path: str) -> None:
    if not _head(path).startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise _wrong_format(path, "an .npz archive")
    if not zipfile.is_zipfile(path):
        raise WeightsFileError(f"{path} is a truncated or corrupted .npz archive (no zip directory at its end). "
                               f"Download or save it again.")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsFileError(f"{path} is a corrupted .npz archive{_reason(e)}. Download or save it again.") from None
    if any(n.endswith("data.pkl") for n in names):
        raise WeightsFileError(f"{path} is not an .npz of arrays: it is a torch checkpoint (zip with data.pkl): "
                               f"rename it to .pth.")
    other = [n for n in names if not n.endswith(".npy")]
    if other:
        raise WeightsFileError(f"{path} is not an .npz of arrays: it is a zip archive whose member {other[0]!r} is "
                               f"not a numpy array.")


def _read_npz(path: str) -> StateDict:
    _check_npz(path)
    out = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                try:
                    arr = f[key]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise WeightsFileError(f"{path} holds a pickled object array {key!r}; pickles are never "
                                               f"loaded (they can run code). Re-save it with numeric arrays only "
                                               f"(np.savez(path, **arrays)) or as safetensors.") from None
                    raise
                if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                    raise WeightsFileError(f"{path}: array {key!r} has dtype {arr.dtype}, not numbers; a weights "
                                           f"file holds numeric arrays only.")
                out[key] = arr
    except WeightsFileError:
        raise
    except Exception as e:  # BadZipFile, zlib.error, EOFError, OSError: a damaged archive
        raise WeightsFileError(f"{path} is a truncated or corrupted .npz archive{_reason(e)}. "
                               f"Download or save it again.") from None
    return out


# ----------------------------------------------------------------------------- torch
def _check_torch(path: str) -> None:
    head = _head(path)
    is_zip = head.startswith((b"PK\x03\x04", b"PK\x05\x06"))
    if not (is_zip or (len(head) >= 2 and head[0] == 0x80)):
        raise _wrong_format(path, "a torch checkpoint")
    if is_zip and not zipfile.is_zipfile(path):
        raise WeightsFileError(f"{path} is a truncated or corrupted torch checkpoint (a damaged zip archive). "
                               f"Download or save it again.")


def _read_torch(path: str) -> StateDict:
    _check_torch(path)
    try:
        import torch
    except ImportError:  # torch is optional: safetensors/npz need nothing extra
        raise WeightsFileError(f"Reading {path} needs PyTorch (`pip install torch`); or convert it to "
                               f".safetensors where torch is installed and load that.") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as e:
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text or "UnpicklingError" in type(e).__name__:
            raise WeightsFileError(f"{path} holds Python objects besides tensors; flaxzoo never unpickles them "
                                   f"(they can run code). Where you trust the file, re-save only the tensors: "
                                   f"torch.save(model.state_dict(), path), or as safetensors.") from None
        raise WeightsFileError(f"{path} is a truncated or corrupted torch checkpoint{_reason(e)}. "
                               f"Download or save it again.") from None
    while isinstance(obj, Mapping) and not any(hasattr(v, "shape") for v in obj.values()):
        inner = next((obj[k] for k in _NESTED_KEYS if k in obj), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise WeightsFileError(f"{path} holds a {type(obj).__name__}, not a state dict of named tensors; save "
                               f"model.state_dict().")
    return {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in obj.items() if hasattr(v, "shape")}


# format -> (cheap check, reader)
_FORMATS = {"safetensors": (_safetensors_header, _read_safetensors), "npz": (_check_npz, _read_npz),
            "torch": (_check_torch, _read_torch)}
