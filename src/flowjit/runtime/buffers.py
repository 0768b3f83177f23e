"""Memory of a CPU executable: output buffers that are reused once nothing holds them, and
the arena plan that gives values which never leave native code fixed, shared space.

Two kinds of storage:
- Values that Python sees (results, inputs of numpy kernels, of checked kernels) live in
  numpy arrays from a small per-output pool (`pooled_output`): the caller may keep them.
- Values produced and consumed inside one native segment live in the executable's arena at
  offsets fixed at compile time (`plan_arena`): a value's space is reused by later values
  once its last reader has run (liveness), so a training step's intermediates take the
  space of the largest few of them, not their sum.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np

ALIGN = 64  # bytes: a cache line, and a whole AVX-512 vector


_char_at = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def data_address(array: np.ndarray) -> int:
    """The address of a contiguous array's data: through the buffer protocol (about 0.35 us)
    rather than `array.ctypes` (about 1.1 us), which matters for tiny runs; read-only and
    empty arrays take the slow way."""
    try:
        return _addressof(_char_at(array))
    except (TypeError, ValueError):
        return array.ctypes.data


def pooled_output(pool: List[np.ndarray], shape, dtype, addresses: Dict[int, int]
                  ) -> np.ndarray:
    """An earlier output of this pool that nothing holds any more (not the caller, not a
    Session's variables), else a new array. Two buffers let a variable's update ping-pong:
    the new value is written into the buffer the value before last lived in, so a training
    step allocates nothing and touches no fresh pages. `addresses` learns each pool buffer's
    data address (id -> address), so callers skip the ctypes lookup.
    A caller may have changed a returned array's metadata in place (`r.shape = ...`,
    `r.dtype = ...`, `r.resize`) before dropping it: such a buffer leaves the pool, so every
    run returns an array of the fetch's shape and dtype, at the address the kernel expects."""
    for i in range(len(pool)):  # (not enumerate: its tuple would hold another reference)
        buffer = pool[i]
        if sys.getrefcount(buffer) == 3:  # the pool, `buffer` and the argument
            if buffer.shape != shape or buffer.dtype != dtype or \
                    not buffer.flags.c_contiguous or \
                    data_address(buffer) != addresses[id(buffer)]:  # (resized: data moved)
                del pool[i], addresses[id(buffer)]
                break
            buffer.setflags(write=True)  # a Session marks variable values read-only
            return buffer
    buffer = np.empty(shape, dtype)
    if len(pool) < 2:
        pool.append(buffer)
        addresses[id(buffer)] = buffer.ctypes.data
    return buffer


def plan_arena(sizes: Sequence[int], lifetimes: Sequence[Tuple[int, int]]
               ) -> Tuple[List[int], int]:
    """Offsets for buffers of `sizes` bytes, each live from step `first` through step `last`
    (inclusive), such that buffers live at the same time never overlap; returns the offsets
    and the arena's size. Greedy first fit in order of first use: a buffer takes the lowest
    gap left by buffers that are already dead."""
    order = sorted(range(len(sizes)), key=lambda i: (lifetimes[i][0], -sizes[i]))
    placed: List[Tuple[int, int, int]] = []  # (offset, end, last step) of live buffers
    offsets = [0] * len(sizes)
    total = 0
    for i in order:
        first, last = lifetimes[i]
        size = -(-max(sizes[i], 1) // ALIGN) * ALIGN
        live = sorted((start, end) for start, end, until in placed if until >= first)
        offset = 0
        for start, end in live:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[i] = offset
        placed.append((offset, offset + size, last))
        total = max(total, offset + size)
    return offsets, total
