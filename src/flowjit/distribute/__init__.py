"""Data-parallel training across processes and machines over MPI, with Horovod's API:

    import flowjit as tf
    import flowjit.distribute as hvd      # was: import horovod.tensorflow as hvd

    hvd.init()
    opt = hvd.DistributedOptimizer(tf.train.AdamOptimizer(0.001 * hvd.size()))
    train_op = opt.minimize(loss)
    ...
    sess.run(hvd.broadcast_global_variables(0))

Start it with `flowjitrun -np 4 python train.py` (or the MPI's own mpirun). Every process
runs the same program; MPI (mpi4py) moves the data. See the README's "Distributed training".
"""
from __future__ import annotations

from typing import Optional

from flowjit.distribute.optimizer import (BroadcastGlobalVariablesHook,  # noqa: F401
                                          DistributedOptimizer, broadcast_global_variables,
                                          broadcast_variables)
from flowjit.ops.collective import allgather, allreduce, broadcast  # noqa: F401
from flowjit.runtime import mpi as _mpi
from flowjit.ops.collective import AVERAGE as Average  # noqa: F401
from flowjit.ops.collective import SUM as Sum  # noqa: F401


class Compression:
    """Horovod's gradient compression choices: `none`, or `fp16` (floating gradients travel
    as float16, half the bytes, and are summed in float16)."""

    none = "none"
    fp16 = "fp16"


def init() -> None:
    """Joins the job's MPI world: call it first, before building or running graphs (it
    pins this process to its share of the machine's cores before the worker pool starts)."""
    _mpi.world()


def is_initialized() -> bool:
    return _mpi.is_initialized()


def rank() -> int:
    """This process's rank in the job, 0 .. size() - 1."""
    return _mpi.world().rank


def size() -> int:
    """How many processes the job has."""
    return _mpi.world().size


def local_rank() -> int:
    """This process's rank among the job's processes on this machine."""
    return _mpi.world().local_rank


def local_size() -> int:
    return _mpi.world().local_size


def is_chief(rank_: Optional[int] = None) -> bool:
    """Whether this process writes checkpoints and summaries: rank 0, or any process of a
    program that never joined a job."""
    return not _mpi.is_initialized() or _mpi.world().rank == 0
