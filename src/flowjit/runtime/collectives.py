"""Collectives across the processes of the job, run by MPI on one communication thread per
process.

Why one thread: MPI requires every rank to call collectives in the same order. The IR
fixes that order (collectives are ops with effects, never removed, merged or reordered
across each other), and one thread running them in the order they were issued keeps it.
Why a thread at all: an allreduce started for a bucket of gradients then runs while the
main thread goes on computing the backward pass of earlier layers (its native kernels
release the GIL), and the optimizer update waits for it (`start_allreduce`/`wait`).

A rank that does not reach a collective (it failed, or hangs) would keep the others
waiting forever: every wait has a deadline (FLOWJIT_COLLECTIVE_TIMEOUT) after which it
fails with DeadlineExceededError; the process's uncaught-exception hook then aborts the job
(runtime/mpi.py).
"""
from __future__ import annotations

import atexit
import itertools
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Dict, Optional

import numpy as np

from flowjit import errors
from flowjit.config import config
from flowjit.ops.collective import AVERAGE, COMPRESSIONS, REDUCE_OPS
from flowjit.runtime import mpi


_queue: "Optional[queue.Queue]" = None
_queue_lock = threading.Lock()
_pending: Dict[int, "tuple[Future, str]"] = {}
_handles = itertools.count(1)
_broken: Optional[str] = None  # why collectives can no longer run in this process


def _communication_queue() -> "queue.Queue":
    """The queue the communication thread serves, started on first use. A daemon thread:
    one stuck in MPI after a timeout must not keep the process from exiting."""
    global _queue
    if _queue is None:
        with _queue_lock:
            if _queue is None:
                _queue = queue.Queue()
                threading.Thread(target=_serve, args=(_queue,), daemon=True,
                                 name="flowjit-mpi").start()
                atexit.register(_abort_if_broken)
    return _queue


def _serve(work_queue: "queue.Queue") -> None:
    mpi.pin_communication_thread()
    while True:
        future, work = work_queue.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(work())
            except BaseException as e:  # (the waiting op raises it)
                future.set_exception(e)


def _abort_if_broken() -> None:
    """After a collective timed out, MPI_Finalize would wait for it forever: abort."""
    if _broken is not None:
        mpi.world().comm.Abort(1)


def _submit(what: str, work: Callable[[], np.ndarray]) -> int:
    if _broken is not None:
        raise errors.AbortedError(f"{what}: collectives cannot run in this process any "
                                  f"more ({_broken})")
    mpi.world()  # (joins the world on this thread: MPI is initialized by the main thread)
    handle = next(_handles)
    future: Future = Future()
    _pending[handle] = (future, what)
    _communication_queue().put((future, work))
    return handle


def wait(handle: int) -> np.ndarray:
    """The result of the collective `handle`, once every rank has taken part in it."""
    global _broken
    future, what = _pending.pop(int(handle))
    timeout = config.collective_timeout
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        world = mpi.world()
        _broken = f"{what} timed out"
        raise errors.DeadlineExceededError(
            f"{what} on rank {world.rank} of {world.size} waited {timeout:g} s for the other "
            f"ranks (FLOWJIT_COLLECTIVE_TIMEOUT): another rank failed, hangs, or runs a "
            f"different sequence of collectives") from None


def start_allreduce(value: np.ndarray, reduce_op: str, compression: str, what: str) -> int:
    """Starts an allreduce of `value` (copied: the caller may reuse its buffer at once)."""
    check_reduce_op(reduce_op, compression)
    world = mpi.world()
    wire = np.array(value, dtype=np.float16 if compression == "fp16" and
                    value.dtype.kind == "f" else value.dtype, order="C")

    def run() -> np.ndarray:
        if world.size > 1:
            world.comm.Allreduce(world.mpi.IN_PLACE, wire, op=world.mpi.SUM)
        result = wire.astype(value.dtype, copy=False)
        if reduce_op == AVERAGE:
            result = _divide(result, world.size)
        return result
    return _submit(what, run)


def _divide(total: np.ndarray, count: int) -> np.ndarray:
    if count == 1:
        return total
    if total.dtype.kind in "iu":  # Horovod's integer average: floor division
        return total // count
    return (total / count).astype(total.dtype, copy=False)


def allreduce(value: np.ndarray, reduce_op: str = AVERAGE, compression: str = "none",
              what: str = "allreduce") -> np.ndarray:
    return wait(start_allreduce(value, reduce_op, compression, what))


def allgather(value: np.ndarray, what: str = "allgather") -> np.ndarray:
    """Every rank's `value` concatenated along axis 0, in rank order; every rank must
    gather the same number of rows (checked: each rank raises the same error)."""
    world = mpi.world()
    local = np.ascontiguousarray(value)
    if local.ndim == 0:
        raise errors.InvalidArgumentError(f"{what}: cannot gather a scalar")

    def run() -> np.ndarray:
        if world.size == 1:
            return local.copy()
        rows = world.comm.allgather(local.shape[0])
        if len(set(rows)) > 1:
            raise errors.InvalidArgumentError(f"{what}: the ranks gather different numbers "
                                              f"of rows {rows}; each must gather as many")
        out = np.empty((sum(rows),) + local.shape[1:], local.dtype)
        world.comm.Allgather(local, out)
        return out
    return wait(_submit(what, run))


def broadcast(value: np.ndarray, root_rank: int, what: str = "broadcast") -> np.ndarray:
    """Rank `root_rank`'s `value` on every rank."""
    world = mpi.world()
    if not 0 <= root_rank < world.size:
        raise errors.InvalidArgumentError(f"{what}: root rank {root_rank} is not a rank of "
                                          f"this job (size {world.size})")
    buffer = np.array(value, order="C")

    def run() -> np.ndarray:
        if world.size > 1:
            world.comm.Bcast(buffer, root=root_rank)
        return buffer
    return wait(_submit(what, run))


def check_reduce_op(reduce_op: str, compression: str) -> None:
    if reduce_op not in REDUCE_OPS:
        raise errors.InvalidArgumentError(f"allreduce: op must be one of {REDUCE_OPS}, got "
                                          f"{reduce_op!r}")
    if compression not in COMPRESSIONS:
        raise errors.InvalidArgumentError(f"allreduce: compression must be one of "
                                          f"{COMPRESSIONS}, got {compression!r}")
