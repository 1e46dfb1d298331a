"""Defensive reading of the files inside a checkpoint directory (stdlib only, no torch).

A checkpoint directory may come from anywhere (a download, a shared drive, another
team's importer). Everything here assumes the bytes are hostile:

* a file is only opened if it is a regular file directly inside the checkpoint directory:
  no symlinks (they could point anywhere, e.g. ``/dev/zero`` or another user's files), no
  name with a path separator or ``..``, no FIFOs or devices (``O_NOFOLLOW`` closes the
  race between the check and the open);
* its size is bounded *before* it is read (a huge ``config.json`` is refused by its
  ``fstat`` size, never parsed);
* bytes that look like a pickle (protocol 2+ opcode ``\\x80``) or a ``torch.save`` zip
  archive are refused by their magic, whichever name they carry: nothing is unpickled;
* a safetensors header is parsed and checked here, by our own rules, before the file is
  handed to the ``safetensors`` library: header length within the file, a JSON object of
  known dtypes, shapes of non-negative integers with a bounded element count, byte ranges
  that match dtype x shape, are contiguous from 0, do not overlap and end exactly at the
  end of the file. A header that lies about an offset or a size is refused by name.

Every refusal is a :class:`CheckpointError` naming the file and the reason.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# Bounds: generous for any real policy, small enough that refusing costs nothing.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_WEIGHTS_BYTES = 16 * 1024**3
MAX_SAFETENSORS_HEADER_BYTES = 16 * 1024 * 1024
MAX_TENSORS = 100_000
MAX_TENSOR_ELEMENTS = 4 * 1024**3
MAX_TENSOR_RANK = 8

# safetensors dtype names -> bytes per element.
SAFETENSORS_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem.

    Defined here (the lowest layer) and re-exported by checkpoint.config and checkpoint.weights.
    """


def looks_like_pickle(head: bytes) -> str | None:
    """What the first bytes of a file say it is, if it is pickle-based; else None.

    Pickle protocol 2-5 streams start with the PROTO opcode ``\\x80`` and the protocol
    number; ``torch.save`` (since 1.6) writes a zip archive (``PK\\x03\\x04``) holding a
    pickle. Protocol 0/1 pickles have no magic; they fail JSON or safetensors parsing.
    """
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a pickle (protocol {head[1]})"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save format, holds a pickle)"
    return None


def _pickle_refusal(path: Path, kind: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is {kind}; robot_policy_ros never unpickles checkpoint files because a "
        "crafted pickle can run arbitrary code"
    )


def open_checkpoint_file(directory: Path, name: str, max_bytes: int) -> tuple[int, int]:
    """Open ``directory/name`` read-only after the checks above; returns (fd, size).

    The caller owns the descriptor. Refuses: names that are not a single plain path
    component, symlinks, anything that is not a regular file, files over ``max_bytes``.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise CheckpointError(
            f"checkpoint file name {name!r} must be a plain file name inside {directory} "
            "(no path separators, no '..')"
        )
    path = directory / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except OSError as exc:
        raise CheckpointError(f"cannot stat {path}: {exc}") from None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        raise CheckpointError(
            f"{path} is a symlink (to {target!r}); checkpoint files must be regular files "
            "inside the checkpoint directory (copy the file instead of linking it)"
        )
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path} is not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise CheckpointError(f"cannot open {path}: {exc}") from None
    try:
        st = os.fstat(fd)  # the file actually opened (it may have changed since lstat)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise CheckpointError(
                f"{path} is {st.st_size} bytes, over the {max_bytes}-byte limit for this "
                "file; refused before reading it"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, int(st.st_size)


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    left = n
    while left > 0:
        block = os.read(fd, min(left, 1 << 20))
        if not block:
            break
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def read_json_file(directory: Path, name: str, max_bytes: int = MAX_CONFIG_BYTES) -> object:
    """Parse ``directory/name`` as strict JSON after the open checks and the size bound.

    NaN/Infinity, integers too long to convert, nesting too deep for the parser and
    pickle magic are all refused with a message.
    """
    path = directory / name
    fd, size = open_checkpoint_file(directory, name, max_bytes)
    try:
        raw = _read_exact(fd, min(size, max_bytes) + 1)  # +1: catches a file that grew
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise CheckpointError(f"{path} is over the {max_bytes}-byte limit; refused")
    kind = looks_like_pickle(raw[:4])
    if kind:
        raise _pickle_refusal(path, kind)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not UTF-8 text: {exc}") from None
    return parse_strict_json(text, str(path))


def _reject_constant(token: str) -> float:
    raise CheckpointError(f"contains {token}, which is not valid JSON")


def parse_strict_json(text: str, what: str) -> object:
    """``json.loads`` that refuses NaN/Infinity and turns every parser failure into a message."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except CheckpointError as exc:
        raise CheckpointError(f"{what} {exc}") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{what} nests JSON too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise CheckpointError(f"{what} is not acceptable JSON: {exc}") from None


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as declared by a validated safetensors header."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_safetensors_header(
    header_bytes: bytes, file_size: int, header_len: int, path: str
) -> dict[str, TensorEntry]:
    """Validate a safetensors header against the file's real size; returns name -> entry.

    ``header_len`` is the little-endian u64 the file starts with; ``header_bytes`` the
    bytes that follow it. Raises CheckpointError naming the first lie found.
    """
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: safetensors header is not UTF-8") from None
    if not text.lstrip().startswith("{"):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    data = parse_strict_json(text, f"{path}: safetensors header")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    meta = data.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    ):
        raise CheckpointError(f"{path}: safetensors __metadata__ must map strings to strings")
    if len(data) > MAX_TENSORS:
        raise CheckpointError(
            f"{path}: safetensors header declares {len(data)} tensors (limit {MAX_TENSORS})"
        )
    data_size = file_size - 8 - header_len
    entries: dict[str, TensorEntry] = {}
    for name, spec in data.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: entry must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{where}: unknown dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_TENSOR_RANK
            or not all(_is_int(d) and d >= 0 for d in shape)
        ):
            raise CheckpointError(
                f"{where}: shape {shape!r} must be a list of at most {MAX_TENSOR_RANK} "
                "non-negative integers"
            )
        numel = math.prod(shape)
        if numel > MAX_TENSOR_ELEMENTS:
            raise CheckpointError(
                f"{where}: shape {shape} has {numel} elements (limit {MAX_TENSOR_ELEMENTS})"
            )
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
        ):
            raise CheckpointError(f"{where}: data_offsets {offsets!r} must be [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise CheckpointError(
                f"{where}: data_offsets {offsets} lie outside the {data_size}-byte data "
                "section of the file"
            )
        nbytes = numel * SAFETENSORS_DTYPES[dtype]
        if end - begin != nbytes:
            raise CheckpointError(
                f"{where}: data_offsets {offsets} span {end - begin} bytes but {dtype} "
                f"{shape} needs {nbytes}"
            )
        entries[name] = TensorEntry(dtype, tuple(shape), begin, end)
    # Byte ranges must tile the data section exactly: no gaps, no overlaps, no trailer.
    position = 0
    for name, e in sorted(entries.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if e.begin != position:
            problem = "overlaps the previous tensor" if e.begin < position else "leaves a gap"
            raise CheckpointError(
                f"{path}: tensor {name!r} starts at byte {e.begin}, expected {position} "
                f"(it {problem})"
            )
        position = e.end
    if position != data_size:
        raise CheckpointError(
            f"{path}: the tensors cover {position} bytes but the data section holds "
            f"{data_size} (trailing or missing bytes)"
        )
    return entries


def read_safetensors_header(fd: int, file_size: int, path: str) -> dict[str, TensorEntry]:
    """Read and validate the header of an open safetensors file (see parse_safetensors_header)."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = _read_exact(fd, 8)
    kind = looks_like_pickle(head[:4])
    if kind:
        raise _pickle_refusal(Path(path), kind)
    if len(head) < 8:
        raise CheckpointError(f"{path} is {len(head)} bytes, too short for safetensors")
    header_len = int.from_bytes(head, "little")
    if header_len > MAX_SAFETENSORS_HEADER_BYTES or header_len > file_size - 8:
        raise CheckpointError(
            f"{path}: safetensors header claims {header_len} bytes, but the file holds "
            f"{file_size - 8} after the length field (limit {MAX_SAFETENSORS_HEADER_BYTES})"
        )
    header = _read_exact(fd, header_len)
    if len(header) != header_len:
        raise CheckpointError(f"{path}: file ended inside the safetensors header")
    return parse_safetensors_header(header, file_size, header_len, path)
