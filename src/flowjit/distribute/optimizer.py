"""Data-parallel training, Horovod's way: every rank computes gradients on its own batch,
`DistributedOptimizer` averages them over the ranks with allreduce before the wrapped
optimizer applies them, and the variables start equal because rank 0's values are
broadcast to every rank (`broadcast_global_variables`)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from flowjit.graph.core import Operation
from flowjit.ops import collective, state
from flowjit.ops.collective import AVERAGE, COMPRESSIONS, REDUCE_OPS
from flowjit.train.optimizer import Optimizer
from flowjit import errors


class DistributedOptimizer(Optimizer):
    """`DistributedOptimizer(optimizer, op=Average, compression=Compression.none)`: the
    gradients of `optimizer` averaged (or summed) over all ranks; the update is the wrapped
    optimizer's. The compiler fuses the step's allreduces into buckets
    (passes/bucket_allreduce.py)."""

    def __init__(self, optimizer: Optimizer, name: Optional[str] = None,
                 use_locking: bool = False, device_dense: str = "", device_sparse: str = "",
                 compression: str = "none", sparse_as_dense: bool = False,
                 op: str = AVERAGE) -> None:
        if not isinstance(optimizer, Optimizer):
            raise errors.InvalidArgumentError(f"DistributedOptimizer wraps a flowjit "
                                              f"optimizer, got {type(optimizer).__name__}")
        compression = getattr(compression, "name", compression)
        if op not in REDUCE_OPS or compression not in COMPRESSIONS:
            raise errors.InvalidArgumentError(
                f"DistributedOptimizer: op must be one of {REDUCE_OPS} and compression one "
                f"of {COMPRESSIONS}, got {op!r}, {compression!r}")
        super().__init__(use_locking, name or f"Distributed{optimizer.get_name()}")
        self._optimizer = optimizer
        self._reduce_op = op
        self._compression = compression

    def compute_gradients(self, *args, **kwargs):
        pairs = self._optimizer.compute_gradients(*args, **kwargs)
        return [(None if g is None else
                 collective.allreduce(g, op=self._reduce_op, compression=self._compression),
                 v) for g, v in pairs]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None) -> Operation:
        return self._optimizer.apply_gradients(grads_and_vars, global_step=global_step,
                                               name=name)

    def get_slot(self, var, name):
        return self._optimizer.get_slot(var, name)

    def get_slot_names(self) -> List[str]:
        return self._optimizer.get_slot_names()

    def variables(self):
        return self._optimizer.variables()


def broadcast_variables(variables: Sequence, root_rank: int) -> Operation:
    """One op assigning every variable of `variables` its value on rank `root_rank`."""
    return state.group(*[state.assign(v, collective.broadcast(v, root_rank)).op
                         for v in variables], name="broadcast_variables")


def broadcast_global_variables(root_rank: int) -> Operation:
    """Horovod's `broadcast_global_variables`: run it once, after the variables are
    initialized (or restored on rank 0), so that every rank starts from rank 0's values."""
    from flowjit.variables import global_variables
    return broadcast_variables(global_variables(), root_rank)


class BroadcastGlobalVariablesHook:
    """Horovod's hook: builds the broadcast op when the session is about to be created and
    runs it once the session exists (call `after_create_session(session)` yourself where
    there is no MonitoredTrainingSession)."""

    def __init__(self, root_rank: int, device: str = "") -> None:
        self.root_rank = root_rank
        self.bcast_op: Optional[Operation] = None

    def begin(self) -> None:
        self.bcast_op = broadcast_global_variables(self.root_rank)

    def after_create_session(self, session, coord=None) -> None:
        if self.bcast_op is None:
            self.begin()
        session.run(self.bcast_op)
