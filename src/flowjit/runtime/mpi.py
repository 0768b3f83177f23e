"""The MPI world of this process, through mpi4py (imported only when a program asks for it):
its rank and size, the ranks that share this machine, what a failing rank does to the
others, and which cores this process computes on.

flowjit does not move bytes between processes itself: MPI does (MPICH or Open MPI from the
package index, or the system's), and flowjit only calls its collectives (runtime/
collectives.py). Every process runs the same program (SPMD, as under Horovod).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, List, Optional

from flowjit import errors
from flowjit.config import config

_logger = logging.getLogger("flowjit")


@dataclass
class World:
    """The processes of one job: `comm` is MPI's COMM_WORLD, `local_*` count the processes
    on this machine; `compute_cores` / `comm_cores` are the cores this process's native
    pool and its communication thread run on (empty: not pinned)."""

    mpi: Any
    comm: Any
    rank: int
    size: int
    local_rank: int
    local_size: int
    compute_cores: List[int] = field(default_factory=list)
    comm_cores: List[int] = field(default_factory=list)


_world: Optional[World] = None
_lock = threading.Lock()


def import_mpi() -> Any:
    """mpi4py's MPI module (initializing MPI), or a clear error saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise errors.UnavailableError(
            f"flowjit.distribute needs mpi4py and an MPI library ({e}); install them with "
            f"`pip install 'flowjit[distributed]'` (mpi4py and MPICH from the package "
            f"index), or pip install mpi4py against the system's MPI") from None
    return MPI


def world() -> World:
    """The world, joined on first use (`flowjit.distribute.init()` joins it explicitly)."""
    global _world
    if _world is None:
        with _lock:
            if _world is None:
                _world = _join()
    return _world


def is_initialized() -> bool:
    return _world is not None


def _join() -> World:
    mpi = import_mpi()
    comm = mpi.COMM_WORLD
    local = comm.Split_type(mpi.COMM_TYPE_SHARED, key=comm.Get_rank())
    joined = World(mpi, comm, comm.Get_rank(), comm.Get_size(), local.Get_rank(),
                   local.Get_size())
    local.Free()
    if joined.size > 1:
        _abort_job_on_uncaught_exception(joined)
    _pin_cores(joined)
    return joined


def _abort_job_on_uncaught_exception(joined: World) -> None:
    """A rank that dies of an exception would leave the others waiting in their next
    collective forever (and itself in MPI_Finalize): print the error, then abort the whole
    job, as Horovod and `python -m mpi4py` do. The launcher then stops every rank."""
    previous = sys.excepthook

    def abort(kind, value, tb) -> None:
        # the one-line reason first: when several ranks fail at once, the first Abort kills
        # the others wherever they are, possibly in the middle of a traceback
        sys.stderr.write(f"flowjit.distribute: rank {joined.rank} of {joined.size} failed "
                         f"with {kind.__name__}: {value}; aborting all ranks of the job\n")
        sys.stderr.flush()
        previous(kind, value, tb)
        sys.stderr.flush()
        joined.comm.Abort(1)

    sys.excepthook = abort

    def thread_abort(args) -> None:  # a failing thread of a rank fails the job too
        if args.exc_type is SystemExit:
            return
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)
        abort(args.exc_type, args.exc_value, None)

    threading.excepthook = thread_abort


def usable_cores() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def plan_cores(cores: List[int], local_rank: int, local_size: int,
               threads: Optional[int]) -> "tuple[List[int], List[int]]":
    """(compute cores, communication cores) of local rank `local_rank` of `local_size` on
    `cores`: disjoint equal shares of the cores, after one core is set aside for the
    ranks' communication threads when every rank still gets a core; `threads` caps a
    share (FLOWJIT_THREADS). With no core to spare, communication shares the compute cores."""
    spare = len(cores) > local_size
    compute_pool = cores[:-1] if spare else cores
    share = max(1, len(compute_pool) // local_size)
    if threads:
        share = max(1, min(share, threads))
    start = (local_rank * share) % len(compute_pool)
    compute = compute_pool[start:start + share] or compute_pool[:share]
    return compute, (cores[-1:] if spare else compute)


def _pin_cores(joined: World) -> None:
    """Keeps `mpirun -np N` on one machine from oversubscribing it: the native worker pool
    sizes itself from the calling thread's CPU affinity (runtime/threads.py), so this
    process's main thread is pinned to its share of the cores before the pool starts, and
    its communication thread to the core left for communication."""
    if not hasattr(os, "sched_setaffinity") or (joined.local_size == 1 and not config.threads):
        return
    from flowjit.runtime import threads
    if threads._pool is not None:
        _logger.warning("flowjit.distribute.init() after the worker pool started: its "
                        "threads keep their cores (call init() first)")
    compute, comm = plan_cores(usable_cores(), joined.local_rank, joined.local_size,
                               config.threads)
    os.sched_setaffinity(0, compute)  # (on Linux: the calling thread, inherited by the pool)
    joined.compute_cores, joined.comm_cores = compute, comm


def pin_communication_thread() -> None:
    """Called by the communication thread itself, first thing."""
    if _world is not None and _world.comm_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, _world.comm_cores)


def writes_files() -> bool:
    """Whether this process writes checkpoints and event files: rank 0 of a job (the ranks'
    variables are equal, so one copy is enough), or a process that joined none."""
    return _world is None or _world.rank == 0
