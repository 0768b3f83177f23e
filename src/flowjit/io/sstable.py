"""The sorted string table TensorFlow's checkpoints index their tensors with (LevelDB's table
format, as TensorFlow's `core/lib/io/table_builder.cc` writes it, without compression).

A table file is:

    data block 0 | trailer       blocks of sorted (key, value) entries
    ...
    metaindex block | trailer    empty (TensorFlow's tables have no filters)
    index block | trailer        one entry per data block: a key >= its last key -> its handle
    footer                       metaindex handle, index handle, padding to 40 bytes, magic

A block is its entries, each `varint shared | varint unshared | varint value length |
unshared key bytes | value` (the key shares `shared` bytes with the previous key, except at a
restart point), then the restart offsets (fixed32 each) and their count (fixed32). A block's
trailer is one byte of compression type (0: none) and the masked CRC-32C of the block and that
byte. A handle is `varint offset | varint size` (the size without the trailer). Integers are
little-endian.
"""
from __future__ import annotations

import struct
from typing import Iterator, List, Sequence, Tuple

from flowjit.io.crc import masked_crc32c

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48           # two handles padded to 2 * 20 bytes, then the 8-byte magic
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION = 0
DEFAULT_BLOCK_SIZE = 256 * 1024   # TensorFlow's table::Options default
RESTART_INTERVAL = 16             # data blocks; index blocks restart at every entry


class TableFormatError(Exception):
    """The bytes are not a well-formed table; the message says what is wrong and where."""


# -- varints ----------------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int, limit: int) -> Tuple[int, int]:
    """(value, position after it); raises TableFormatError past `limit`."""
    value = shift = 0
    while True:
        if pos >= limit or shift > 63:
            raise TableFormatError(f"bad varint at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


# -- writing ----------------------------------------------------------------------------------
class _BlockBuilder:
    def __init__(self, restart_interval: int) -> None:
        self.restart_interval = restart_interval
        self.buffer = bytearray()
        self.restarts: List[int] = [0]
        self.count = 0          # entries since the last restart
        self.last_key = b""
        self.empty = True

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.count = 0
        self.buffer += encode_varint(shared) + encode_varint(len(key) - shared) + \
            encode_varint(len(value))
        self.buffer += key[shared:] + value
        self.last_key = key
        self.count += 1
        self.empty = False

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        tail = b"".join(struct.pack("<I", r) for r in self.restarts)
        return bytes(self.buffer) + tail + struct.pack("<I", len(self.restarts))


def build_table(entries: Sequence[Tuple[bytes, bytes]],
                block_size: int = DEFAULT_BLOCK_SIZE) -> bytes:
    """The bytes of a table holding `entries`, which must be sorted by key, keys unique."""
    out = bytearray()
    index = _BlockBuilder(restart_interval=1)

    def write_block(contents: bytes) -> bytes:
        handle = encode_varint(len(out)) + encode_varint(len(contents))
        kind = bytes([NO_COMPRESSION])
        out.extend(contents + kind + struct.pack("<I", masked_crc32c(contents + kind)))
        return handle

    block = _BlockBuilder(RESTART_INTERVAL)
    previous = None
    for key, value in entries:
        if previous is not None and key <= previous:
            raise ValueError(f"table keys must be unique and sorted: {key!r} after {previous!r}")
        previous = key
        block.add(key, value)
        if block.size_estimate() >= block_size:
            index.add(block.last_key, write_block(block.finish()))
            block = _BlockBuilder(RESTART_INTERVAL)
    if not block.empty:
        index.add(block.last_key, write_block(block.finish()))
    metaindex_handle = write_block(_BlockBuilder(RESTART_INTERVAL).finish())
    index_handle = write_block(index.finish())
    footer = (metaindex_handle + index_handle).ljust(FOOTER_SIZE - 8, b"\0")
    out.extend(footer + struct.pack("<Q", MAGIC))
    return bytes(out)


# -- reading ----------------------------------------------------------------------------------
def read_table(data: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """The (key, value) entries of a table, in order; every block's checksum is verified."""
    if len(data) < FOOTER_SIZE:
        raise TableFormatError(f"{len(data)} bytes is too short for a table "
                               f"(the footer alone is {FOOTER_SIZE}): truncated?")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != MAGIC:
        raise TableFormatError("the footer has no table magic number: not a table, "
                               "or truncated")
    _, pos = _decode_handle(footer, 0, FOOTER_SIZE - 8)        # metaindex: unused
    index_handle, _ = _decode_handle(footer, pos, FOOTER_SIZE - 8)
    body_size = len(data) - FOOTER_SIZE
    for _, handle_bytes in _block_entries(_read_block(data, index_handle, body_size)):
        handle, _ = _decode_handle(handle_bytes, 0, len(handle_bytes))
        yield from _block_entries(_read_block(data, handle, body_size))


def _decode_handle(data: bytes, pos: int, limit: int) -> Tuple[Tuple[int, int], int]:
    offset, pos = decode_varint(data, pos, limit)
    size, pos = decode_varint(data, pos, limit)
    return (offset, size), pos


def _read_block(data: bytes, handle: Tuple[int, int], body_size: int) -> bytes:
    offset, size = handle
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > body_size:
        raise TableFormatError(f"block at bytes {offset}..{end} runs past the end of the "
                               f"table's blocks ({body_size} bytes): truncated?")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    (stored_crc,) = struct.unpack("<I", data[offset + size + 1:end])
    if masked_crc32c(data[offset:offset + size + 1]) != stored_crc:
        raise TableFormatError(f"checksum mismatch in the block at byte {offset}: "
                               f"the file is corrupted")
    if kind != NO_COMPRESSION:
        raise TableFormatError(f"block at byte {offset} is compressed (type {kind}); "
                               f"only uncompressed tables are supported")
    return contents


def _block_entries(block: bytes) -> Iterator[Tuple[bytes, bytes]]:
    if len(block) < 4:
        raise TableFormatError("a block shorter than its restart count")
    (num_restarts,) = struct.unpack("<I", block[-4:])
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise TableFormatError(f"a block of {len(block)} bytes claims {num_restarts} restarts")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = decode_varint(block, pos, limit)
        unshared, pos = decode_varint(block, pos, limit)
        value_length, pos = decode_varint(block, pos, limit)
        if shared > len(key) or pos + unshared + value_length > limit:
            raise TableFormatError(f"a block entry at byte {pos} runs past its block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_length]
        pos += value_length
