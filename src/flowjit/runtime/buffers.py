"""Memory of a CPU executable: who owns each value's buffer, decided when it is built.

Each value a kernel writes gets its memory by one of three policies (`OutputSpec`), from
what reads the value after the kernel:
  - fixed:    values read only inside the run (by later kernels), and small results: one
              buffer owned by the executable, reused by every run at the same address. It is
              read-only to numpy (kernels write through its address), so a Session copies it
              before it leaves a run (a fetch, a variable's new value), and nothing can keep
              it past the next run;
  - fresh:    large fetches: a new array each run, which the caller keeps;
  - recycled: large new values of variables: from the Session's `BufferPool`, to which the
              Session gives back each value it replaces (it owns state arrays alone: fetches
              of them are copies), so a training step writes into the buffer the value before
              last lived in, allocates nothing and touches no fresh pages.
Values produced and consumed inside one native segment live in its arena at offsets fixed
at compile time (`plan_arena`): a value's space is reused by later values once its last
reader has run (liveness), so a training step's intermediates take the space of the largest
few of them, not their sum.
"""
from __future__ import annotations

import ctypes
from typing import Dict, List, Optional, Sequence, Tuple

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


# Results up to this size live in fixed buffers and are copied out: cheaper than a fresh
# array's allocation and address lookup, and the run's addresses are all known.
SMALL_RESULT_BYTES = 4096
FIXED, FRESH, RECYCLED = "fixed", "fresh", "recycled"


class OutputSpec:
    """The shape, dtype and memory policy of one value a kernel writes."""

    __slots__ = ("shape", "dtype", "policy", "fixed", "address")

    def __init__(self, shape, dtype, policy: str) -> None:
        self.shape, self.dtype, self.policy = tuple(shape), np.dtype(dtype), policy
        self.fixed: Optional[np.ndarray] = None
        self.address = 0
        if policy == FIXED:
            self.fixed = np.empty(self.shape, self.dtype)
            self.address = self.fixed.ctypes.data
            self.fixed.setflags(write=False)  # see the module's docstring

    def buffer(self, pool: Optional["BufferPool"]) -> Tuple[np.ndarray, int]:
        """This run's buffer for the value, and its data address."""
        if self.fixed is not None:
            return self.fixed, self.address
        if self.policy == RECYCLED and pool is not None:
            out = pool.take(self.shape, self.dtype)
        else:
            out = np.empty(self.shape, self.dtype)
        return out, data_address(out)


def output_policy(value_type, is_fetched: bool, is_assigned: bool) -> str:
    """The policy of a value that a kernel writes: see the module's docstring."""
    nbytes = value_type.num_elements * value_type.dtype.np_dtype.itemsize
    if not (is_fetched or is_assigned) or nbytes <= SMALL_RESULT_BYTES:
        return FIXED
    return FRESH if is_fetched else RECYCLED


class BufferPool:
    """Arrays a Session gave back (variable values it replaced), for the next runs' new
    values of the same shape and dtype; at most `max_bytes` are kept."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.free: Dict[Tuple[tuple, np.dtype], List[np.ndarray]] = {}

    def take(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        stack = self.free.get((shape, dtype))
        if stack:
            array = stack.pop()
            self.bytes -= array.nbytes
            array.setflags(write=True)  # (state arrays are read-only)
            return array
        return np.empty(shape, dtype)

    def give(self, array: np.ndarray) -> None:
        """Takes back an array nothing else references (the caller's guarantee)."""
        if array.flags.owndata and array.flags.c_contiguous and \
                self.bytes + array.nbytes <= self.max_bytes:
            self.free.setdefault((array.shape, array.dtype), []).append(array)
            self.bytes += array.nbytes


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
