"""Low-level binary FBX 7.4 encoder: a tree of nodes with typed properties, written as bytes.

Layout (FBX 7.4, little endian): the 23-byte magic ``Kaydara FBX Binary  \\0\\x1a\\0`` and a uint32
version; then node records ``uint32 end_offset, uint32 prop_count, uint32 prop_bytes, uint8 name_len,
name, properties, nested records, 13-byte null record``; then the top-level null record and a fixed footer.
Version 7.5+ widens the three record fields to uint64, which is why this writer only does 7400.

Property types follow the Python value: ``bool`` -> C, ``int`` -> I (int32), ``float`` -> D, ``str`` -> S,
``bytes`` -> R, numpy arrays by dtype (float32 f, float64 d, int32 i, int64 l, bool b). The wrappers
``Int16``, ``Int64`` and ``Float32`` select Y, L and F for scalars.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Union

import numpy as np

FBX_VERSION = 7400
HEADER_MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
# Importers that validate files (the FBX SDK) tie FileId to CreationTime; this pair is the fixed
# combination every Blender-written FBX carries, so files stay byte-for-byte reproducible.
FILE_ID = bytes.fromhex("28b32aebb624ccc2bfc8b02aa92bfcf1")
CREATION_TIME = "1970-01-01 10:00:00:000"
_FOOTER_ID = bytes.fromhex("fabcab09d0c8d466b176fb831cf7267e")
_FOOTER_MAGIC = bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
_NULL_RECORD = b"\x00" * 13
# Arrays larger than this (bytes) are zlib-compressed, like the Autodesk converter does.
_COMPRESS_ABOVE = 128
# These record types need a null record even when they have properties and no children.
_ALWAYS_NULL_RECORD = {"AnimationStack", "AnimationLayer"}


@dataclass(frozen=True)
class Int16:
    value: int


@dataclass(frozen=True)
class Int64:
    value: int


@dataclass(frozen=True)
class Float32:
    value: float


Property = Union[bool, int, float, str, bytes, Int16, Int64, Float32, np.ndarray]

_ARRAY_CODES = {
    np.dtype(np.float32): b"f",
    np.dtype(np.float64): b"d",
    np.dtype(np.int32): b"i",
    np.dtype(np.int64): b"l",
    np.dtype(np.bool_): b"b",
}


@dataclass
class FbxNode:
    """One node record: a name, its properties and nested nodes."""

    name: str
    props: list[Property] = field(default_factory=list)
    children: list["FbxNode"] = field(default_factory=list)

    def add(self, name: str, *props: Property) -> "FbxNode":
        """Append and return a child node."""
        child = FbxNode(name, list(props))
        self.children.append(child)
        return child


def encode_property(value: Property) -> bytes:
    """Type code plus payload of one property."""
    if isinstance(value, (bool, np.bool_)):
        return b"C" + struct.pack("<B", 1 if value else 0)
    if isinstance(value, Int16):
        return b"Y" + struct.pack("<h", value.value)
    if isinstance(value, Int64):
        return b"L" + struct.pack("<q", value.value)
    if isinstance(value, Float32):
        return b"F" + struct.pack("<f", value.value)
    if isinstance(value, (int, np.integer)):
        return b"I" + struct.pack("<i", int(value))
    if isinstance(value, (float, np.floating)):
        return b"D" + struct.pack("<d", float(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return b"S" + struct.pack("<I", len(raw)) + raw
    if isinstance(value, bytes):
        return b"R" + struct.pack("<I", len(value)) + value
    if isinstance(value, np.ndarray):
        code = _ARRAY_CODES.get(value.dtype)
        if code is None:
            raise TypeError(f"FBX arrays must be float32/float64/int32/int64/bool, not {value.dtype}")
        raw = np.ascontiguousarray(value.reshape(-1), dtype=value.dtype.newbyteorder("<")).tobytes()
        if len(raw) > _COMPRESS_ABOVE:
            payload = zlib.compress(raw, 1)  # level 6 takes ~5x longer for ~1 % smaller files
            encoding = 1
        else:
            payload = raw
            encoding = 0
        return code + struct.pack("<3I", value.size, encoding, len(payload)) + payload
    raise TypeError(f"unsupported FBX property type {type(value).__name__}")


def _write_node(buf: bytearray, node: FbxNode, is_last: bool) -> None:
    name = node.name.encode("ascii")
    if len(name) > 255:
        raise ValueError(f"FBX node name too long: {node.name!r}")
    start = len(buf)
    buf += b"\x00" * 12  # end offset, property count, property bytes: patched below
    buf += struct.pack("<B", len(name)) + name
    props_start = len(buf)
    for prop in node.props:
        buf += encode_property(prop)
    props_len = len(buf) - props_start
    if node.children:
        for i, child in enumerate(node.children):
            _write_node(buf, child, i == len(node.children) - 1)
        buf += _NULL_RECORD
    elif (not node.props and not is_last) or node.name in _ALWAYS_NULL_RECORD:
        buf += _NULL_RECORD
    if len(buf) > 0xFFFFFFFF:
        raise ValueError("FBX 7.4 files are limited to 4 GiB")
    struct.pack_into("<3I", buf, start, len(buf), len(node.props), props_len)


def encode_fbx(top_level: list[FbxNode], version: int = FBX_VERSION) -> bytes:
    """Whole binary file for the given top-level nodes (header, records, null record, footer)."""
    if version != FBX_VERSION:
        raise ValueError("only FBX 7400 is supported by this encoder")
    buf = bytearray(HEADER_MAGIC + struct.pack("<I", version))
    for i, node in enumerate(top_level):
        _write_node(buf, node, i == len(top_level) - 1)
    buf += _NULL_RECORD
    buf += _FOOTER_ID + b"\x00" * 4
    pad = (-len(buf)) % 16 or 16  # align to 16 bytes; already aligned means a full 16
    buf += b"\x00" * pad
    buf += struct.pack("<I", version) + b"\x00" * 120 + _FOOTER_MAGIC
    return bytes(buf)
