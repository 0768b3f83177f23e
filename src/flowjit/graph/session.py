"""`tf.Session`: runs fetches of a graph with feeds, holding variable values between runs.

A run is: resolve fetches and feeds to graph elements, check every fed value against its
tensor, look up (or build) the executable for this signature, run it, and commit the new
variable values. Everything is validated before any code runs, so a bad feed never reaches a
kernel, and a failed run leaves every Variable as it was. A run like the one before it (same
fetches, same feed keys, types, shapes and dtypes) takes a fast path that has decided all
of this once and only checks the values (graph/fast_path.py).
"""
from __future__ import annotations

import collections.abc
import contextlib
import logging
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from flowjit import config as flowjit_config
from flowjit import errors
from flowjit.client.tracing import RunTracer
from flowjit.graph.core import Graph, Operation, Tensor, get_default_graph
from flowjit.compiler import CompileOptions, compile_plan
from flowjit.graph.fast_path import FastPath
from flowjit.graph.feeds import convert_feed_value
from flowjit.graph.plan import RunPlan, build_plan
from flowjit.ir.core import TensorType
from flowjit.runtime.backends import get_backend
from flowjit.runtime.buffers import BufferPool
from flowjit.runtime.executable import Executable, SessionState


_logger = logging.getLogger("flowjit")
RECOMPILE_WARNING = 16  # compiles of the same fetches before a Session warns
_MISS = object()  # a run the fast path does not take


class Session:
    """`tf.Session(target='', graph=None, config=None, backend=None)`."""

    def __init__(self, target: str = "", graph: Optional[Graph] = None, config: Any = None,
                 backend: Optional[str] = None) -> None:
        self._graph = graph if graph is not None else get_default_graph()
        chosen = get_backend(flowjit_config.resolve_backend(
            backend, gpu_requested=self._graph.gpu_requested))
        chosen.require()  # (the CUDA backend without pycuda or a GPU: UnavailableError)
        self.backend = chosen.name
        self._adopt = chosen.adopt if chosen.resident else None
        self._state = SessionState()
        self._buffers = BufferPool()
        self._options = CompileOptions.from_config(self.backend)
        self._plans: Dict[Tuple, RunPlan] = {}
        self._executables: "OrderedDict[Tuple, Executable]" = OrderedDict()
        self._new_locks()
        self._compile_counts: Dict[Tuple, int] = {}
        self._requests: Dict[Any, _Request] = {}
        self._variable_shapes_version = 0
        self._closed = False
        self._default_context: List[Any] = []
        _live_sessions.add(self)

    def _new_locks(self) -> None:
        self._cache_lock = threading.Lock()    # the executables' LRU
        self._compile_lock = threading.Lock()  # one compile at a time
        self._lock = threading.Lock()          # a run and its commit of variables

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def sess_str(self) -> str:
        return ""

    # -- run ----------------------------------------------------------------------------------
    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        """Runs the graph to compute `fetches` (any nesting of lists, tuples, dicts and
        namedtuples of tensors, ops, variables or names); returns the same structure with
        numpy values (None for ops). With `options=tf.RunOptions(trace_level=FULL_TRACE)`,
        the run's phases are timed into `run_metadata.step_stats` (`client/tracing.py`)."""
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        request = self._requests.get(fetches) if fetches.__class__ is Tensor else None
        if request is None:  # (a lone tensor, the usual fetch, is its own key)
            request = self._request(fetches)
        fast = request.fast
        if fast is not None and options is None:
            with self._lock:
                results = self._run_fast(fast, feed_dict, request.single)
            if results is not _MISS:
                return results if request.single else request.rebuild(iter(results))
        feeds = self._convert_feeds(feed_dict)
        if not request.elements:  # sess.run([]) is [], as in TF1: nothing to compile
            return request.rebuild(iter(()))
        tracer = None if options is None else RunTracer.start(
            options, run_metadata, self._compiles, ", ".join(e.name for e in request.elements[:4]))
        if tracer is not None:
            return self._traced_run(request, feeds, tracer)
        version = self._variable_shapes_version
        executable = self._executable(request, feeds)
        with self._lock:  # (results are copied before the next run reuses their buffers)
            if version != self._variable_shapes_version:  # another thread reshaped a
                executable = self._executable(request, feeds)  # variable meanwhile
            values, updates, counters = executable.run(feeds, self._state, self._buffers)
            if updates or counters:
                self._commit(updates, counters, feeds.values())
            results = [None if e.__class__ is Operation else
                       _user_value(values[e], feeds.values(), self._buffers)
                       for e in request.elements]
        if request.cached:
            self._learn_fast_path(request, feed_dict, feeds, executable, version)
        return request.rebuild(iter(results))

    def _run_fast(self, fast: FastPath, feed_dict, single: bool):
        """The fetched values of a run on `fast` (the value itself for a `single` fetch),
        or _MISS when this run is not of its kind (another feed signature, an executable
        evicted or stale): the general path runs it. The caller holds the run lock."""
        executable = fast.executable()
        if executable is None or fast.version != self._variable_shapes_version:
            return _MISS
        arguments = fast.arguments(feed_dict)
        if arguments is None:
            return _MISS
        try:  # it stays the most recently used (OrderedDict's calls are atomic)
            self._executables.move_to_end(fast.lru_key)
        except KeyError:  # evicted, or the Session closed: the general path decides
            return _MISS
        outputs, updates, counters = executable.call(arguments, self._state, self._buffers)
        if updates or counters:
            self._commit(updates, counters, arguments)
        if single:
            i = fast.results[0]
            if i is None:
                return None
            value = outputs[i]  # (a number, as a tiny run's: `_user_value`'s first case inline)
            if value is not None and value.ndim == 0:
                return value[()]
            return _user_value(value, arguments, self._buffers)
        buffers = self._buffers
        return [None if i is None else _user_value(outputs[i], arguments, buffers)
                for i in fast.results]

    def _learn_fast_path(self, request: "_Request", feed_dict, feeds: Dict[Tensor, np.ndarray],
                         executable: Executable, version: int) -> None:
        """After a run on the general path: the fast path for the next runs like it."""
        last = request.last
        if last is None or last[1] != version or last[3]() is not executable or self._closed:
            return  # (another thread's run meanwhile, or the executable was not kept)
        fast = FastPath.build(feed_dict, feeds, executable, request.elements, last[2], version)
        if fast is not None:
            request.fast = fast

    def _traced_run(self, request: "_Request", feeds: Dict[Tensor, np.ndarray],
                    tracer: RunTracer):
        """`run` with its phases timed into the tracer's RunMetadata."""
        with tracer.phase("prepare"):
            version = self._variable_shapes_version
            executable = self._executable(request, feeds)
        with self._lock:
            if version != self._variable_shapes_version:
                executable = self._executable(request, feeds)
            with tracer.phase("execute"):
                values, updates, counters = executable.run(feeds, self._state, self._buffers,
                                                           timer=tracer.kernel)
            with tracer.phase("commit"):
                self._commit(updates, counters, feeds.values())
            results = [None if e.__class__ is Operation else
                       _user_value(values[e], feeds.values(), self._buffers)
                       for e in request.elements]
        tracer.finish()
        return request.rebuild(iter(results))

    def _compiles(self) -> int:
        return sum(self._compile_counts.values())

    def _request(self, fetches) -> "_Request":
        """The resolved fetches; cached for the usual shapes of `fetches` (a tensor, an op,
        a name, or a flat list/tuple of those), so a repeated run does no resolution."""
        key = _request_key(fetches)
        request = self._requests.get(key) if key is not None else None
        if request is None:
            leaves: List[Any] = []
            rebuild = _flatten_fetches(fetches, leaves)
            request = _Request([self._fetch_element(leaf) for leaf in leaves], rebuild)
            if key is not None:
                if len(self._requests) > 4096:
                    self._requests.clear()
                self._requests[key] = request
                request.cached = True  # (its fast path is kept with it)
        return request

    def _commit(self, updates: Dict[Operation, np.ndarray], counters: Dict[Operation, int],
                fed: Iterable[np.ndarray]) -> None:
        """Makes a run's new variable values and random counters the Session's state, all
        at once: the new state is built aside and swapped in by one assignment, so an
        interrupt (Ctrl-C) at any moment keeps all of them or none. The Session alone
        holds its state's arrays (fetches of them are copies), so the values replaced go
        back to its buffer pool for later runs' new values."""
        values = {}
        reshaped = False
        for var, value in updates.items():
            if value.__class__ is not np.ndarray and hasattr(value, "release"):
                pass  # a backend's resident value (runtime/cuda.py's DeviceValue): its own
            else:
                value = np.asarray(value)
                if not value.flags.owndata or not value.flags.writeable or \
                        any(value is f for f in fed):
                    value = value.copy()  # never alias a feed, another array's data, a
                    # buffer the executable reuses, or another variable's value (read-only)
                value.setflags(write=False)  # state arrays are shared by readers
                if self._adopt is not None:  # a resident backend keeps it in its memory
                    value = self._adopt(value)
            previous = self._state.variables.get(var)
            # (before a variable's first value, executables assumed its declared shape)
            shape = previous.shape if previous is not None else var.outputs[0].shape.dims
            reshaped |= shape is None or tuple(shape) != value.shape
            values[var] = value
        if reshaped:  # executables specialized on the old shapes are stale (bumped first:
            self._variable_shapes_version += 1  # a spare bump only costs a compile)
        replaced = [self._state.variables.get(var) for var in values]
        self._state = self._state.updated(values, counters)
        kept = {id(value) for value in values.values()}
        for old in replaced:
            if old is None or id(old) in kept:
                continue
            if isinstance(old, np.ndarray):
                self._buffers.give(old)
            else:
                old.release()  # a resident value: its memory back to the backend's pool

    def _executable(self, request: "_Request", feeds: Dict[Tensor, np.ndarray]) -> Executable:
        """The executable for this (fetches, targets, feed signature): compiled once, kept
        in a bounded LRU cache."""
        signature = tuple([(t, v.shape, v.dtype) for t, v in feeds.items()])
        version = self._variable_shapes_version
        last = request.last  # the usual case: the same feeds as this request's last run
        if last is not None and last[0] == signature and last[1] == version:
            executable = last[3]()  # (weak: an executable the LRU evicted is freed)
            if executable is not None:
                try:  # it stays the most recently used
                    self._executables.move_to_end(last[2])
                    return executable
                except KeyError:  # evicted meanwhile (OrderedDict's calls are atomic)
                    pass
        key = (request.tensors, request.targets, frozenset(signature), version)
        with self._cache_lock:
            executable = self._executables.get(key)
            if executable is not None:
                self._executables.move_to_end(key)
                request.last = (signature, version, key, weakref.ref(executable))
                return executable
        # Threads asking for the same executable compile it once: the compiled executable is
        # in the cache before the compile lock is released.
        with self._compile_lock:
            with self._cache_lock:
                executable = self._executables.get(key)
            if executable is not None:
                return executable
            self._note_compile(request, feeds)
            executable = self._compile(request, feeds)
            with self._cache_lock:
                if not self._closed:  # (a Session closed meanwhile keeps no code)
                    self._executables[key] = executable
                    request.last = (signature, version, key, weakref.ref(executable))
                while len(self._executables) > flowjit_config.config.cache_size:
                    self._executables.popitem(last=False)
        return executable

    def _note_compile(self, request: "_Request", feeds: Dict[Tensor, np.ndarray]) -> None:
        """Says why this compile happens (FLOWJIT_LOG=recompile) and warns when the same
        fetches keep being recompiled for new feed shapes."""
        what = ", ".join(e.name for e in request.elements[:3]) or "(nothing)"
        shapes = ", ".join(f"{t.name} {t.dtype.ir_name}{list(v.shape)}"
                           for t, v in sorted(feeds.items(), key=lambda kv: kv[0].name))
        fetch_key = (request.tensors, request.targets, frozenset(feeds))
        count = self._compile_counts.get(fetch_key, 0) + 1
        self._compile_counts[fetch_key] = count
        reason = "first run of these fetches" if count == 1 else \
            f"compile #{count} of these fetches: a feed shape or dtype changed"
        if flowjit_config.config.log_recompiles:
            _logger.info("compiling [%s] with feeds {%s} (backend %s): %s", what, shapes,
                         self.backend, reason)
        if count == RECOMPILE_WARNING:
            warnings.warn(f"flowjit: this Session compiled [{what}] {count} times, once per "
                          f"new feed shape ({shapes}). Each compile takes time; feed fixed "
                          f"shapes (e.g. pad the last batch) to reuse one executable.",
                          RuntimeWarning, stacklevel=4)

    def _compile(self, request: "_Request", feeds: Dict[Tensor, np.ndarray]) -> Executable:
        plan_key = (request.tensors, request.targets, frozenset(feeds))
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = build_plan(request.tensors, request.targets, tuple(feeds))
            self._plans[plan_key] = plan
        feed_types = {t: TensorType(t.dtype, v.shape) for t, v in feeds.items()}
        variable_types = {}
        for var in _variables_read(plan):
            value = self._state.variables.get(var)
            if value is not None:
                variable_types[var] = TensorType(var.outputs[0].dtype, value.shape)
        return compile_plan(plan, feed_types, variable_types, self._options)

    def _fetch_element(self, fetch) -> Any:
        if isinstance(fetch, (Tensor, Operation)) and fetch.graph is not self._graph:
            raise errors.FetchError(f"Fetch {fetch.describe()} is not an element of this "
                                    f"Session's graph.", fetch)
        try:
            element = self._graph.as_graph_element(fetch)
        except errors.NotFoundError:
            raise  # already says which name is unknown (and is a ValueError, as in TF1)
        except ValueError as e:
            raise errors.FetchError(str(e)) from None
        except TypeError:
            raise TypeError(f"Fetch argument {fetch!r} has invalid type {type(fetch).__name__}"
                            f"; must be a Tensor, Operation, Variable or name string (or a "
                            f"list/tuple/dict of those).") from None
        return element

    def _convert_feeds(self, feed_dict) -> Dict[Tensor, np.ndarray]:
        feeds: Dict[Tensor, np.ndarray] = {}
        if not feed_dict:
            return feeds
        if not isinstance(feed_dict, collections.abc.Mapping):
            raise TypeError(f"feed_dict must be a dict, got {type(feed_dict).__name__}")
        graph = self._graph
        for key, value in feed_dict.items():
            tensor = key if key.__class__ is Tensor and key.graph is graph else \
                self._feed_tensor(key)
            feeds[tensor] = convert_feed_value(tensor, value)
        return feeds

    def _feed_tensor(self, key) -> Tensor:
        if hasattr(key, "_as_graph_element") and not isinstance(key, Tensor):
            key = key._as_graph_element()
        if isinstance(key, str):
            try:
                return self._graph.get_tensor_by_name(key)
            except errors.NotFoundError:
                raise
            except ValueError:
                raise errors.FeedError(f"Cannot interpret feed_dict key '{key}' as a Tensor: "
                                       f"tensor names look like 'x:0'.") from None
        if isinstance(key, Tensor):
            if key.graph is not self._graph:
                raise errors.FeedError(f"Cannot feed {key.describe()}: it is not an element of "
                                       f"this Session's graph.", key.op)
            return key
        raise TypeError(f"Cannot interpret feed_dict key {key!r} as a Tensor: keys must be "
                        f"Tensors, Variables or tensor names.")

    # -- state helpers --------------------------------------------------------------------------
    def load_variable(self, variable, value) -> None:
        """Sets a variable's value in this Session (TF1's `Variable.load`)."""
        self.load_variables([(variable, value)])

    def load_variables(self, pairs) -> None:
        """Sets several variables' values at once, all or none (`Saver.restore`): `pairs` is
        an iterable of (variable, value); every value is checked before any is set."""
        arrays = {}
        for variable, value in pairs:
            tensor = variable if isinstance(variable, Tensor) else variable._as_graph_element()
            arrays[tensor.op] = convert_feed_value(tensor, value).copy()  # checks dtype, shape
        with self._lock:
            self._commit(arrays, {}, ())

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the executables, and with them the compiled code no other Session shares."""
        with self._cache_lock:
            self._closed = True
            self._executables.clear()

    def __enter__(self) -> "Session":
        context = self.as_default()
        context.__enter__()
        self._default_context.append(context)
        return self

    def __exit__(self, *exc) -> None:
        self._default_context.pop().__exit__(*exc)
        self.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator["Session"]:
        _session_stack().append(self)
        try:
            with self._graph.as_default():
                yield self
        finally:
            _session_stack().pop()

    def list_devices(self) -> list:
        if get_backend(self.backend).device == "gpu":
            return ["/device:CPU:0 (host steps)", f"/device:GPU:0 ({self.backend})"]
        return [f"/device:CPU:0 ({self.backend})"]


# A forked child has only the thread that forked: a Session lock another thread held at the
# fork (compiling, or running) would stay held for ever. The child gives every live Session
# new locks (the executable being compiled is simply not in the child's cache).
_live_sessions: "weakref.WeakSet[Session]" = weakref.WeakSet()


def _new_locks_in_child() -> None:
    for session in list(_live_sessions):
        session._new_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_in_child)


class InteractiveSession(Session):
    """A Session that installs itself as the default session on creation."""

    def __init__(self, target: str = "", graph: Optional[Graph] = None, config: Any = None,
                 backend: Optional[str] = None) -> None:
        super().__init__(target, graph, config, backend)
        _session_stack().append(self)

    def close(self) -> None:
        stack = _session_stack()
        if self in stack:
            stack.remove(self)
        super().close()


class _Request:
    """Fetches resolved to graph elements, with the function that rebuilds their nesting."""

    __slots__ = ("elements", "rebuild", "single", "tensors", "targets", "last", "fast",
                 "cached")

    def __init__(self, elements: List[Any], rebuild) -> None:
        self.elements = elements
        self.rebuild = rebuild
        self.single = rebuild is _one_value  # a lone fetch, not in a list
        self.cached = False  # kept by the Session for the next runs of the same fetches
        self.fast: Optional[FastPath] = None  # for runs like the last one (fast_path.py)
        # (feed signature in feed order, variable shapes version, LRU key, executable) of
        # the last cache hit: a repeated run skips building the LRU's key and its lock.
        self.last: Optional[Tuple[tuple, int, Tuple, Any]] = None
        self.tensors = tuple(dict.fromkeys(e for e in elements if isinstance(e, Tensor)))
        self.targets = tuple(dict.fromkeys(e for e in elements if isinstance(e, Operation)))


_SIMPLE_FETCH = (Tensor, Operation, str)


def _request_key(fetches):
    """A hashable key for fetches whose resolution can be cached, else None."""
    if isinstance(fetches, _SIMPLE_FETCH):
        return fetches
    if type(fetches) in (list, tuple) and all(isinstance(f, _SIMPLE_FETCH) for f in fetches):
        return (type(fetches), tuple(fetches))
    return None


# -- the default session ------------------------------------------------------------------------
_thread_local = threading.local()


def _session_stack() -> List[Session]:
    if not hasattr(_thread_local, "stack"):
        _thread_local.stack = []
    return _thread_local.stack


def get_default_session() -> Optional[Session]:
    stack = _session_stack()
    return stack[-1] if stack else None


def _session_for_eval(session: Optional[Session], graph: Graph) -> Session:
    session = session or get_default_session()
    if session is None:
        raise ValueError("Cannot evaluate tensor using `eval()`: No default session is "
                         "registered. Use `with sess.as_default()` or pass an explicit session "
                         "to `eval(session=sess)`")
    if session.graph is not graph:
        raise ValueError("Cannot use the given session to evaluate tensor: the tensor's graph "
                         "is different from the session's graph.")
    return session


# -- fetch structures ---------------------------------------------------------------------------
def _flatten_fetches(fetches, leaves: List[Any]):
    """Appends the leaves of `fetches` to `leaves`; returns a function that rebuilds the
    structure from an iterator of values."""
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten_fetches(f, leaves) for f in fetches]
        if isinstance(fetches, tuple) and hasattr(fetches, "_fields"):  # namedtuple
            cls = type(fetches)
            return lambda values: cls(*[p(values) for p in parts])
        cls = type(fetches)
        return lambda values: cls(p(values) for p in parts) if cls is not list \
            else [p(values) for p in parts]
    if isinstance(fetches, collections.abc.Mapping):
        keys = list(fetches.keys())
        parts = [_flatten_fetches(fetches[k], leaves) for k in keys]
        cls = type(fetches)

        def rebuild_mapping(values):
            items = [(k, p(values)) for k, p in zip(keys, parts)]
            try:
                return cls(items)
            except TypeError:
                return dict(items)
        return rebuild_mapping
    if fetches is None:
        raise TypeError("Fetch argument None has invalid type <class 'NoneType'>")
    leaves.append(fetches)
    return _one_value


def _one_value(values):
    return next(values)


def _variables_read(plan: RunPlan):
    seen = {}
    for reads in plan.reads.values():
        for read in reads:
            seen[read.variable] = None
    for var in plan.snapshot_fetches.values():
        seen[var] = None
    return list(seen)


def unfed_placeholder_error(tensor: Tensor, needed_by) -> errors.InvalidArgumentError:
    shape = tensor.shape
    shape_text = "<unknown>" if shape.dims is None else \
        "[" + ",".join("?" if d is None else str(d) for d in shape.dims) + "]"
    need = f"; it is needed to compute '{needed_by.name}'" if needed_by is not None else ""
    return errors.InvalidArgumentError(
        f"You must feed a value for placeholder tensor '{tensor.op.name}' with dtype "
        f"{tensor.dtype.name} and shape {shape_text} (created at {tensor.op.site}){need}.",
        tensor.op)


def _user_value(value, fed: Iterable[np.ndarray], buffers: BufferPool):
    """Results are numpy values the user may keep and modify: never views of Session state,
    of the caller's own feed arrays, or of any other array (a reshape is a view), but for
    the views the Session's buffer pool lends (runtime/buffers.py)."""
    if value is None:
        return None
    if value.ndim == 0:
        return value[()]
    if not value.flags.writeable or any(value is array for array in fed) or \
            (not value.flags.owndata and not buffers.lends(value)):
        return value.copy()
    return value
