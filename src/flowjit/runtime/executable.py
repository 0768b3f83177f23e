"""An Executable is a compiled Func plus how its parameters and results bind to one run:
which feed, variable, random counter or state query fills each parameter, and which fetch
or variable each result goes to. The binding is computed once, at compile time, so a cache
hit does no graph or IR work."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from flowjit import errors
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.plan import RunPlan
from flowjit.ir.core import FEED, FETCH, RNG_COUNTER, VARIABLE, Func
from flowjit.lower import QUERY
from flowjit.runtime.buffers import BufferPool


class SessionState:
    """What a Session keeps between runs: variable values and random-op run counters.
    A run never changes a state: it returns what changed, and the Session swaps in a new
    state with one assignment (`updated`), so an exception at any moment (a failed kernel,
    Ctrl-C) leaves either all of a run's assignments or none of them."""

    __slots__ = ("variables", "rng_counters")

    def __init__(self, variables: Optional[Dict[Operation, np.ndarray]] = None,
                 rng_counters: Optional[Dict[Operation, int]] = None) -> None:
        self.variables: Dict[Operation, np.ndarray] = variables or {}
        self.rng_counters: Dict[Operation, int] = rng_counters or {}

    def updated(self, variables: Dict[Operation, np.ndarray],
                rng_counters: Dict[Operation, int]) -> "SessionState":
        """A new state: this one with `variables` and `rng_counters` replaced."""
        if not variables and not rng_counters:
            return self
        return SessionState({**self.variables, **variables},
                            {**self.rng_counters, **rng_counters})


@dataclass
class Binding:
    feeds: List[Tuple[int, Tensor]]
    variables: List[Tuple[int, Operation, Optional[object]]]  # position, var, fetch needing it
    counters: List[Tuple[int, Operation]]
    queries: List[Tuple[int, Operation]]
    fetches: Dict[Tensor, int]
    updates: List[Tuple[int, Operation]]
    feeds_only: bool = False  # every parameter is a feed: a run reads no state


def bind(func: Func, plan: RunPlan) -> Binding:
    graph = (plan.fetches + plan.targets)[0].graph
    by_name = {t.name: t for t in plan.feeds}
    reader: Dict[Operation, object] = {}
    for op, reads in plan.reads.items():
        for read in reads:
            if read.source is None:
                reader.setdefault(read.variable, plan.needed_by.get(op))
    for tensor, var in plan.snapshot_fetches.items():
        reader.setdefault(var, tensor)
    binding = Binding([], [], [], [], {}, [])
    for i, p in enumerate(func.params):
        if p.role == FEED:
            binding.feeds.append((i, by_name[p.key]))
        elif p.role == VARIABLE:
            var = graph.get_operation_by_name(p.key)
            binding.variables.append((i, var, reader.get(var)))
        elif p.role == RNG_COUNTER:
            binding.counters.append((i, graph.get_operation_by_name(p.key)))
        elif p.role == QUERY:
            binding.queries.append((i, graph.get_operation_by_name(p.key)))
        else:
            raise errors.InternalError(f"unknown parameter role {p.role!r}")
    for i, r in enumerate(func.results):
        if r.role == FETCH:
            binding.fetches.setdefault(graph.get_tensor_by_name(r.key), i)
        elif r.role == VARIABLE:
            binding.updates.append((i, graph.get_operation_by_name(r.key)))
    binding.feeds_only = len(binding.feeds) == len(func.params)
    return binding


class Executable:
    """A compiled run. `run_fn(inputs) -> outputs` is the backend's entry point."""

    def __init__(self, func: Func, plan: RunPlan, backend: str,
                 run_fn: Callable[..., List[np.ndarray]], stats: Optional[Dict] = None) -> None:
        self.func = func
        self.plan = plan
        self.backend = backend
        self.stats = stats or {}  # the backend's build statistics (native, numpy, ...)
        self.binding = bind(func, plan)
        self._parameter_of = {tensor: i for i, tensor in self.binding.feeds}
        self._run_fn = run_fn

    def parameter_of(self, tensor: Tensor) -> Optional[int]:
        """The position of the parameter a fed tensor fills (None: the run does not read it)."""
        return self._parameter_of.get(tensor)

    def result_of(self, tensor: Tensor) -> int:
        """The position of a fetched tensor's value among `call`'s outputs."""
        return self.binding.fetches[tensor]

    def run(self, feeds: Dict[Tensor, np.ndarray], state: SessionState,
            buffers: Optional[BufferPool] = None, timer: Optional[Callable] = None
            ) -> Tuple[Dict[Tensor, np.ndarray], Dict[Operation, np.ndarray],
                       Dict[Operation, int]]:
        """Fetched values, new variable values and advanced random counters; `state` is
        left as it was. Values may be read-only buffers the next run reuses (the caller
        copies them: runtime/buffers.py); new values of variables may come from `buffers`.
        `timer(label, start_ns, end_ns)`, in a traced run, receives each step's time."""
        outputs, updates, counters = self.call(self.feed_arguments(feeds), state, buffers,
                                               timer)
        return {t: outputs[i] for t, i in self.binding.fetches.items()}, updates, counters

    def call(self, arguments: List[Optional[np.ndarray]], state: SessionState,
             buffers: Optional[BufferPool] = None, timer: Optional[Callable] = None
             ) -> Tuple[List[np.ndarray], Dict[Operation, np.ndarray], Dict[Operation, int]]:
        """`run` by positions: `arguments` holds the feeds at their parameters' positions
        and None elsewhere (filled in here, in place, from `state`); returns every result
        (`result_of` says where a fetch is), new variable values and random counters."""
        b = self.binding
        if not b.feeds_only:
            self._arguments_from_state(arguments, state)
        if timer is None:
            outputs = self._run_fn(arguments, buffers)
        else:
            outputs = self._run_fn(arguments, buffers, timer=timer)
        if not (b.updates or b.counters):
            return outputs, {}, {}
        updates = {var: outputs[i] for i, var in b.updates}
        counters = {counter: state.rng_counters.get(counter, 0) + 1 for _, counter in b.counters}
        return outputs, updates, counters

    def feed_arguments(self, feeds: Dict[Tensor, np.ndarray]) -> List[Optional[np.ndarray]]:
        """The Func's arguments with only the feeds in place (the rest: None)."""
        arguments: List[Optional[np.ndarray]] = [None] * len(self.func.params)
        for i, tensor in self.binding.feeds:
            arguments[i] = feeds[tensor]
        return arguments

    def inputs(self, feeds: Dict[Tensor, np.ndarray], state: SessionState
               ) -> List[np.ndarray]:
        """The Func's arguments for one run: feeds, variable values, random counters."""
        arguments = self.feed_arguments(feeds)
        self._arguments_from_state(arguments, state)
        return arguments

    def _arguments_from_state(self, arguments: List[Optional[np.ndarray]],
                              state: SessionState) -> None:
        b = self.binding
        for i, var, needed_by in b.variables:
            value = state.variables.get(var)
            if value is None:
                raise uninitialized_error(var, needed_by)
            arguments[i] = value
        for i, counter in b.counters:
            arguments[i] = np.array(state.rng_counters.get(counter, 0), np.int64)
        for i, op in b.queries:
            arguments[i] = _answer_query(op, state)


def _answer_query(op: Operation, state: SessionState) -> np.ndarray:
    variables = [op.graph.get_operation_by_name(n) for n in op.attrs["variables"]]
    if op.type == "IsVariableInitialized":
        return np.array(state.variables.get(variables[0]) is not None)
    names = [v.name.encode("utf-8") for v in variables if state.variables.get(v) is None]
    return np.array(names, dtype=object).reshape(-1)  # (strings are bytes, as in TF1)


def uninitialized_error(variable: Operation, needed_by) -> errors.UninitializedVariableError:
    need = f"; it is needed to compute '{needed_by.name}'" if needed_by is not None else ""
    return errors.UninitializedVariableError(
        f"Attempting to use uninitialized value {variable.name} (Variable created at "
        f"{variable.site}){need}. Run sess.run(tf.global_variables_initializer()) first.",
        variable)
