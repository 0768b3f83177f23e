"""Memory of a CPU executable: who owns each value's buffer, decided when it is built.

Each value a kernel writes gets its memory by one of three policies (`OutputSpec`), from
what reads the value after the kernel:
  - fixed:    values read only inside the run (by later kernels), and small results: one
              buffer owned by the executable, reused by every run at the same address. It is
              read-only to numpy (kernels write through its address), so a Session copies it
              before it leaves a run (a fetch, a variable's new value), and nothing can keep
              it past the next run;
  - lent:     large fetches: a view of a buffer from the Session's `BufferPool`, which the
              caller keeps as long as it likes; a finalizer gives the buffer back to the
              pool when the caller's array dies, so a loop that fetches a large result and
              drops it reuses two buffers instead of faulting in fresh pages every run;
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
import threading
import weakref
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
FIXED, LENT, RECYCLED = "fixed", "lent", "recycled"


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
        if pool is None:
            out = np.empty(self.shape, self.dtype)
        elif self.policy == RECYCLED:
            out = pool.take(self.shape, self.dtype)
        else:
            out = pool.lend(self.shape, self.dtype)
        return out, data_address(out)


def output_policy(value_type, is_fetched: bool, is_assigned: bool) -> str:
    """The policy of a value that a kernel writes: see the module's docstring."""
    nbytes = value_type.num_elements * value_type.dtype.np_dtype.itemsize
    if not (is_fetched or is_assigned) or nbytes <= SMALL_RESULT_BYTES:
        return FIXED
    return LENT if is_fetched else RECYCLED


class BufferPool:
    """Arrays a Session gave back (variable values it replaced) and buffers whose lent
    views died, for the next runs' values of the same shape and dtype; at most
    `max_bytes` are kept. (Finalizers may give buffers back from any thread: a lock.)"""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.free: Dict[Tuple[tuple, np.dtype], List[np.ndarray]] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        with self._lock:
            stack = self.free.get((shape, dtype))
            array = stack.pop() if stack else None
            if array is not None:
                self.bytes -= array.nbytes
        if array is None:
            return np.empty(shape, dtype)
        array.setflags(write=True)  # (state arrays are read-only)
        return array

    def lend(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """An array over a pool buffer for the caller to keep: the buffer comes back to the
        pool when that array and every view of it are gone (see _Loan)."""
        buffer = self.take(shape, dtype)
        loan = _Loan(buffer)
        weakref.finalize(loan, self.give, buffer)
        return np.asarray(loan)

    @staticmethod
    def lends(array: np.ndarray) -> bool:
        """Whether `array` is one this pool lent (the caller may keep it as it is)."""
        return isinstance(array.base, _Loan)

    def give(self, array: np.ndarray) -> None:
        """Takes back an array nothing else references (the caller's guarantee)."""
        with self._lock:
            if array.flags.owndata and array.flags.c_contiguous and \
                    self.bytes + array.nbytes <= self.max_bytes:
                self.free.setdefault((array.shape, array.dtype), []).append(array)
                self.bytes += array.nbytes


class _Loan:
    """A lent pool buffer, exposed through the array interface: the array made from it
    has it as its base, and numpy views of that array keep that array (so the loan) alive.
    A finalizer on the loan gives the buffer back once nothing can reach it. (A finalizer
    on a plain view would not do: views of a view point at the buffer, not at the view.)"""

    __slots__ = ("buffer", "__array_interface__", "__weakref__")

    def __init__(self, buffer: np.ndarray) -> None:
        self.buffer = buffer
        self.__array_interface__ = buffer.__array_interface__


def plan_arena(sizes: Sequence[int], lifetimes: Sequence[Tuple[int, int]],
               align: int = ALIGN) -> Tuple[List[int], int]:
    """Offsets for buffers of `sizes` bytes, each live from step `first` through step `last`
    (inclusive), such that buffers live at the same time never overlap; returns the offsets
    (multiples of `align`) and the arena's size. Greedy first fit in order of first use: a
    buffer takes the lowest gap left by buffers that are already dead."""
    order = sorted(range(len(sizes)), key=lambda i: (lifetimes[i][0], -sizes[i]))
    placed: List[Tuple[int, int, int]] = []  # (offset, end, last step) of live buffers
    offsets = [0] * len(sizes)
    total = 0
    for i in order:
        first, last = lifetimes[i]
        size = -(-max(sizes[i], 1) // align) * align
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
