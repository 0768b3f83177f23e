"""Collective ops across the processes of a data-parallel job (flowjit.distribute): allreduce,
allgather, broadcast, with Horovod's op types so graphs and programs port.

They are host ops with effects (ops/host.py's kind): every backend runs their numpy kernels
in the host part of an executable, which hand the work to MPI (runtime/collectives.py).
Effects keep them alive through DCE, unmerged by CSE (two allreduces of one tensor are two
collectives), unfolded, and in program order: every rank compiles the same graph to the
same IR and so calls the same collectives in the same order.

`allreduce_start`/`allreduce_wait` are the compiler's split of an allreduce, made by
passes/bucket_allreduce.py: the start hands a fused bucket of gradients to the
communication thread and yields a handle, the wait (placed before the first use) yields
the result, so the backward pass computes while the bucket travels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import dtypes
from flowjit.graph.registry import (ShapeInferenceError, TensorSpec, register_gradient,
                                    register_op)
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import apply_op, convert_to_tensor

# The ops' attribute values (Horovod's).
SUM, AVERAGE = "sum", "average"
REDUCE_OPS = (SUM, AVERAGE)
COMPRESSIONS = ("none", "fp16")


def _runtime():
    """The MPI side (runtime/collectives.py), imported when a collective first runs: it
    costs every program's import otherwise, and most programs never run one."""
    from flowjit.runtime import collectives
    return collectives


def _same_as_input(inputs, **_attrs):
    return [TensorSpec(inputs[0].dtype, inputs[0].shape)]


def _check_numeric(spec: TensorSpec, what: str) -> None:
    if spec.dtype is dtypes.string or spec.dtype.is_bool:
        raise ShapeInferenceError(f"{what} needs a numeric tensor, got dtype {spec.dtype.name}")


def _allreduce_infer(inputs, *, reduce_op, compression, tensor):
    _check_numeric(inputs[0], "allreduce")
    if reduce_op not in REDUCE_OPS or compression not in COMPRESSIONS:
        raise ShapeInferenceError(f"allreduce: op must be one of {REDUCE_OPS} and compression "
                                  f"one of {COMPRESSIONS}, got {reduce_op!r}, "
                                  f"{compression!r}")
    return _same_as_input(inputs)


def _allreduce_kernel(x, *, reduce_op, compression, tensor):
    return _runtime().allreduce(x, reduce_op, compression, f"allreduce of {tensor}")


def _allreduce_start_infer(inputs, *, reduce_op, compression, tensor):
    _allreduce_infer(inputs, reduce_op=reduce_op, compression=compression, tensor=tensor)
    return [TensorSpec(dtypes.int64, TensorShape([]))]


def _allreduce_start_kernel(x, *, reduce_op, compression, tensor):
    return np.array(_runtime().start_allreduce(x, reduce_op, compression,
                                               f"allreduce of {tensor}"), np.int64)


def _allreduce_wait_infer(inputs, **_attrs):
    """(handle, the value sent): the result is shaped like the value sent, which the wait
    also keeps alive until then."""
    return [TensorSpec(inputs[1].dtype, inputs[1].shape)]


def _allreduce_wait_kernel(handle, sent):
    return _runtime().wait(int(handle))


def _allgather_infer(inputs, *, tensor):
    """Every rank gathers as many rows as this one (the compiler wants static shapes; the
    kernel checks it)."""
    from flowjit.runtime import mpi
    x = inputs[0]
    if x.shape.ndims == 0:
        raise ShapeInferenceError("allgather needs a tensor of rank >= 1, got a scalar")
    if x.shape.ndims is None:
        return [TensorSpec(x.dtype, TensorShape(None))]
    dims = x.shape.as_list()
    rows = None if dims[0] is None else dims[0] * mpi.world().size
    return [TensorSpec(x.dtype, TensorShape([rows] + dims[1:]))]


def _allgather_kernel(x, *, tensor):
    return _runtime().allgather(x, f"allgather of {tensor}")


def _broadcast_kernel(x, *, root_rank, tensor):
    return _runtime().broadcast(x, root_rank, f"broadcast of {tensor} from rank {root_rank}")


register_op("HorovodAllreduce", "allreduce", _allreduce_infer, _allreduce_kernel,
            has_effects=True)
register_op("AllreduceStart", "allreduce_start", _allreduce_start_infer,
            _allreduce_start_kernel, has_effects=True)
register_op("AllreduceWait", "allreduce_wait", _allreduce_wait_infer, _allreduce_wait_kernel,
            has_effects=True)
register_op("HorovodAllgather", "allgather", _allgather_infer, _allgather_kernel,
            has_effects=True)
register_op("HorovodBroadcast", "broadcast", _same_as_input, _broadcast_kernel,
            has_effects=True)


# -- the graph API (flowjit.distribute re-exports these) -----------------------------------------
def allreduce(tensor, average: Optional[bool] = None, op: Optional[str] = None,
              compression: str = "none", name: Optional[str] = None):
    """The sum (op=Sum) or mean (op=Average, the default) of `tensor` over all ranks;
    `compression="fp16"` sends floating values as float16."""
    x = convert_to_tensor(tensor)
    if op is None:
        op = SUM if average is False else AVERAGE
    return apply_op("HorovodAllreduce", [x], {"reduce_op": op, "compression": compression,
                                              "tensor": repr(x.name)},
                    name=name, default_name="HorovodAllreduce")


def allgather(tensor, name: Optional[str] = None):
    """Every rank's `tensor` concatenated along axis 0, in rank order (each rank gathers
    the same number of rows)."""
    x = convert_to_tensor(tensor)
    return apply_op("HorovodAllgather", [x], {"tensor": repr(x.name)}, name=name,
                    default_name="HorovodAllgather")


def broadcast(tensor, root_rank: int, name: Optional[str] = None):
    """Rank `root_rank`'s value of `tensor`, on every rank."""
    x = convert_to_tensor(tensor)
    return apply_op("HorovodBroadcast", [x], {"root_rank": int(root_rank),
                                              "tensor": repr(x.name)},
                    name=name, default_name="HorovodBroadcast")


# -- gradients (Horovod's) -----------------------------------------------------------------------
@register_gradient("HorovodAllreduce")
def _allreduce_grad(b, instr, grads):
    """Each rank's input reaches every rank's output, scaled alike: the gradient is the
    same allreduce of the output gradients."""
    return [b.allreduce(grads[0], **instr.attrs)]


@register_gradient("HorovodAllgather")
def _allgather_grad(b, instr, grads):
    """Rank r's rows of the gathered gradient, summed over the ranks' gradients (each
    rank's output depends on every rank's input)."""
    from flowjit.runtime import mpi
    summed = b.allreduce(grads[0], reduce_op=SUM, compression="none",
                         tensor=f"the gradient of {instr.attrs['tensor']}")
    x = instr.operands[0]
    begin = (mpi.world().rank * x.type.shape[0],) + (0,) * (len(x.type.shape) - 1)
    return [b.slice(summed, begin=begin, size=tuple(x.type.shape))]
