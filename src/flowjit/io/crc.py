"""CRC-32C (Castagnoli), and the "masked" form TensorFlow stores in its files.

A CRC of data that itself contains CRCs is weak, so TensorFlow (as LevelDB) stores
`rotate_right(crc, 15) + 0xa282ead8`. The fast path is the `crc32c` package (hardware
instructions); without it a table-driven Python loop computes the same values, slowly.
"""
from __future__ import annotations

import functools

_MASK_DELTA = 0xA282EAD8
_POLY = 0x82F63B78  # Castagnoli, bit-reversed


def _make_table() -> list:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _crc32c_python(data: bytes) -> int:
    table = _TABLE or _TABLE.extend(_make_table()) or _TABLE
    crc = 0xFFFFFFFF
    for byte in memoryview(data).cast("B"):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TABLE: list = []

@functools.lru_cache(maxsize=1)
def _native():
    """The `crc32c` package's function, imported on first use (importing it takes ~30 ms,
    which `import flowjit` should not pay), or None without the optional package."""
    try:
        from crc32c import crc32c as native
    except ImportError:
        return None
    return native


def crc32c(data) -> int:
    """The CRC-32C of a bytes-like object."""
    native = _native()
    if native is not None:
        return native(data)
    return _crc32c_python(data)


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return mask(crc32c(data))
