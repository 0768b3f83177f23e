"""The CUDA backend: executables whose kernels run on an NVIDIA GPU, and whose variables stay
in device memory between runs.

`compile(func)` builds a device plan (runtime/device_plan.py: launches, host steps, copies,
checks, the arena) and a `DeviceExecutable` that carries it out through a driver: the
pycuda one (runtime/cuda_driver.py) on a GPU, or any object with the same methods (the tests
run plans with the GPU emulator). One `Device` per process wraps the driver: its context,
its memory pool and its counters of copies and launches.

Variables: a run's new variable values are `DeviceValue`s, device buffers the Session keeps
as its state (it never copies them to the host unless they are fetched or saved); the next
run reads them where they are. A new value is written to a buffer of its own and becomes
the variable's only when the Session commits the run, so a failed run (a CUDA error, a bad
index) leaves every variable as it was; the buffer replaced goes back to the pool, so a
training loop alternates between two buffers per variable.

pycuda is imported lazily, on the first Session that asks for this backend; without it (or
without a driver and a GPU) `Session(backend="cuda")` raises UnavailableError saying which.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.interp.evaluate import execute
from flowjit.ir.core import Func
from flowjit.runtime.backends import Backend, log_fallbacks, register_backend
from flowjit.runtime.device_plan import (DEVICE, HOST, CheckStep, CopyStep, DevicePlan, HostStep,
                                         LaunchStep, build_device_plan, occupancy_grid)

_logger = logging.getLogger("flowjit")

POOL_LIMIT_BYTES = 1 << 30  # device memory the pool of freed buffers keeps, at most
GRAPHS_KEPT = 8  # captured CUDA graphs an executable keeps (the most recently replayed)


class DeviceValue:
    """A tensor in device memory, owned by whoever holds it (the Session's state); the host
    copy is made on first use (a fetch, a checkpoint) and kept (values never change)."""

    __slots__ = ("device", "allocation", "address", "shape", "dtype", "_host", "__weakref__")

    def __init__(self, device: "Device", allocation, address: int, shape, dtype) -> None:
        self.device, self.allocation, self.address = device, allocation, address
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._host: Optional[np.ndarray] = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def numpy(self) -> np.ndarray:
        if self._host is None:
            host = self.device.to_host(self.address, self.shape, self.dtype, "variable")
            host.setflags(write=False)
            self._host = host
        return self._host

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def release(self) -> None:
        """Gives the buffer back to the device's pool (the Session replaced the value)."""
        if self.allocation is not None:
            self.device.give(self.allocation, self.address, self.nbytes)
            self.allocation = None


class Device:
    """The process's GPU through a driver: allocations (freed buffers kept in a pool by
    size, so that a training loop allocates nothing after its first runs; at most
    `pool_limit` bytes, the least recently freed sizes released first), copies, and
    counters of what moved (`counters`: copies and bytes each way, launches, graph
    launches). The driver's errors come out as flowjit's (`device_error`); an allocation
    that runs out of memory empties the pool and is tried once more."""

    def __init__(self, driver, pool_limit: int = POOL_LIMIT_BYTES) -> None:
        self.driver = driver
        self.pool_limit = pool_limit
        self.free: Dict[int, list] = collections.OrderedDict()  # size -> [(alloc, address)]
        self.counters: Dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, what: str, amount: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + amount

    @property
    def pooled_bytes(self) -> int:
        return sum(size * len(stack) for size, stack in self.free.items())

    def take(self, nbytes: int, what: str = "a buffer") -> Tuple[object, int]:
        """An allocation of `nbytes` (at least 1) and its address; `what` names its use in
        the error if there is no memory left."""
        nbytes = max(int(nbytes), 1)
        with self._lock:
            stack = self.free.get(nbytes)
            if stack:
                return stack.pop()
        try:
            return self.driver.alloc(nbytes)
        except Exception as e:
            if not _out_of_memory(e):
                raise device_error(e, f"an allocation of {nbytes} bytes for {what}") from None
        self.trim(0)
        self.count("pool_emptied_for_memory")
        try:
            return self.driver.alloc(nbytes)
        except Exception as e:
            raise device_error(e, f"an allocation of {nbytes} bytes for {what} (the pool of "
                                  f"freed buffers emptied)") from None

    def give(self, allocation, address: int, nbytes: int) -> None:
        nbytes = max(int(nbytes), 1)
        if nbytes > self.pool_limit:
            self._release(allocation, address)
            return
        with self._lock:
            self.free.setdefault(nbytes, []).append((allocation, address))
            self.free.move_to_end(nbytes)
        self.trim(self.pool_limit)

    def trim(self, limit: int) -> None:
        """Releases pooled buffers, the least recently freed sizes first, until the pool
        holds at most `limit` bytes."""
        released = []
        with self._lock:
            pooled = self.pooled_bytes
            while pooled > limit and self.free:
                size, stack = next(iter(self.free.items()))
                while stack and pooled > limit:
                    released.append(stack.pop(0))
                    pooled -= size
                if not stack:
                    del self.free[size]
        for allocation, address in released:
            self._release(allocation, address)

    def _release(self, allocation, address: int) -> None:
        try:
            self.driver.free(allocation, address)
        except Exception as e:
            raise device_error(e, "freeing a buffer") from None

    def to_device(self, address: int, array: np.ndarray, why: str) -> None:
        self.count("copies_to_device")
        self.count("bytes_to_device", array.nbytes)
        self.count(f"copies_for_{why}")
        try:
            self.driver.to_device(address, np.ascontiguousarray(array))
        except Exception as e:
            raise device_error(e, f"a copy to the GPU ({why})") from None

    def to_host(self, address: int, shape, dtype, why: str) -> np.ndarray:
        self.count("copies_to_host")
        self.count(f"copies_for_{why}")
        try:
            out = self.driver.to_host(address, tuple(shape), np.dtype(dtype))
        except Exception as e:
            raise device_error(e, f"a copy from the GPU ({why})") from None
        self.count("bytes_to_host", out.nbytes)
        return out

    def upload(self, array: np.ndarray, why: str) -> DeviceValue:
        array = np.ascontiguousarray(array)
        allocation, address = self.take(array.nbytes, f"a {why} of {array.dtype}"
                                                      f"{list(array.shape)}")
        try:
            self.to_device(address, array, why)
        except BaseException:
            self.give(allocation, address, array.nbytes)
            raise
        return DeviceValue(self, allocation, address, array.shape, array.dtype)


class DeviceExecutable:
    """Runs a DevicePlan on a Device: `run(inputs, buffers=None, timer=None)` returns the
    Func's results, fetches as host arrays and new variable values as DeviceValues."""

    def __init__(self, plan: DevicePlan, device: Device) -> None:
        self.plan, self.device = plan, device
        driver = device.driver
        try:
            self.kernels = driver.load(plan) if plan.launches else {}
        except Exception as e:
            raise device_error(e, f"loading the PTX module of {plan.func.name}") from None
        self.calls: List[Tuple[LaunchStep, object, int]] = []  # (step, function, grid)
        for step in plan.launches:
            function = self.kernels[step.kernel]
            try:
                grid = occupancy_grid(step.launch, driver.limits, driver.registers(function))
            except ValueError as e:
                raise errors.InternalError(f"cannot launch {step.kernel} "
                                           f"({plan.instr(step.index).describe()}): {e}") from None
            self.calls.append((step, function, grid))
        self.arena, self.arena_address = device.take(plan.arena_bytes,
                                                     f"the arena of {plan.func.name}")
        self.constants = {s: device.upload(value, "constant")
                          for s, value in plan.constants.items()
                          if plan.buffer_slot(s) == s and s in _device_slots(plan)}
        # buffer addresses -> a captured graph, the least recently replayed first
        self.graphs: "collections.OrderedDict[Tuple[int, ...], object]" = \
            collections.OrderedDict()
        self.runs = 0

    def __del__(self) -> None:
        try:
            self.device.give(self.arena, self.arena_address, self.plan.arena_bytes)
            for value in self.constants.values():
                value.release()
        except Exception:  # (interpreter shutdown)
            pass

    def run(self, inputs: Sequence, buffers=None, timer: Optional[Callable] = None) -> list:
        plan, device = self.plan, self.device
        host: Dict[int, np.ndarray] = {}
        address: Dict[int, int] = {}
        temporary: List[DeviceValue] = []
        outputs: Dict[int, Tuple[object, int, int]] = {}  # (allocation, address, bytes)
        try:
            for (i, side), value in zip(enumerate(plan.param_sides), inputs):
                if side == HOST:
                    host[i] = value.numpy() if isinstance(value, DeviceValue) else value
                elif isinstance(value, DeviceValue) and value.device is device:
                    address[i] = value.address
                else:  # a host array in the state (set before this backend ran): copied in
                    uploaded = device.upload(np.asarray(value), "variable")
                    temporary.append(uploaded)
                    address[i] = uploaded.address
            for buffer, (kind, _) in plan.placement.items():
                if kind == "output":
                    nbytes = _nbytes(plan, buffer)
                    outputs[buffer] = (*device.take(nbytes, _describe(plan.values[buffer])),
                                       nbytes)
                    address[buffer] = outputs[buffer][1]
            for buffer, (kind, offset) in plan.placement.items():
                if kind == "arena":
                    address[buffer] = self.arena_address + offset
                elif kind == "constant" and buffer in self.constants:
                    address[buffer] = self.constants[buffer].address
            self._steps(host, address, timer)
            try:  # (launches are asynchronous: their errors surface here)
                device.driver.synchronize()
            except Exception as e:
                raise device_error(e, f"the kernels of {plan.func.name}") from None
            results = self._results(host, address, outputs)
        except BaseException:
            for allocation, addr, nbytes in outputs.values():
                device.give(allocation, addr, nbytes)  # (the variables keep their buffers)
            raise
        finally:
            for value in temporary:
                value.release()
        self.runs += 1
        return results

    def _steps(self, host: Dict[int, np.ndarray], address: Dict[int, int],
               timer: Optional[Callable]) -> None:
        plan, device = self.plan, self.device
        for s, value in plan.constants.items():
            host.setdefault(s, value)
        launches = iter(self.calls)
        steps = plan.steps
        first_launch = next((at for at, s in enumerate(steps) if isinstance(s, LaunchStep)), None)
        at = 0
        while at < len(steps):
            step = steps[at]
            start = time.time_ns() if timer is not None else 0
            if isinstance(step, LaunchStep) and at == first_launch and plan.graphable:
                calls = [next(launches) for s in steps if isinstance(s, LaunchStep)]
                self._launch_graph(calls, address)
                at += len(calls)
                if timer is not None:
                    timer(("device", f"CUDA graph of {len(calls)} kernels"), start,
                          time.time_ns())
                continue
            if isinstance(step, LaunchStep):
                self._launch(next(launches), address)
            elif isinstance(step, CopyStep):
                buffer = plan.buffer_slot(step.slot)
                value = plan.values[step.slot]
                if step.to == DEVICE:
                    device.to_device(address[buffer], _host_value(host[step.slot], value),
                                     step.why)
                else:
                    host[step.slot] = device.to_host(address[buffer], value.type.shape,
                                                     value.type.dtype.np_dtype, step.why)
            elif isinstance(step, CheckStep):
                self._check(step, host)
            else:
                instr = plan.instr(step.index)
                for s, result in zip(step.outputs, execute(instr, [host[i] for i in step.inputs])):
                    host[s] = result
                device.count("host_steps")
            if timer is not None:
                timer(_label(plan, step), start, time.time_ns())
            at += 1

    def _launch(self, call, address: Dict[int, int]) -> None:
        step, function, grid = call
        pointers = [address[self.plan.buffer_slot(s)] for s in step.buffers]
        try:
            self.device.driver.launch(function, grid, step.launch.block,
                                      step.launch.shared_bytes, pointers)
        except Exception as e:
            raise device_error(e, f"kernel {step.kernel} of "
                               f"{self.plan.instr(step.index).describe()}") from None
        self.device.count("launches")

    def _launch_graph(self, calls, address: Dict[int, int]) -> None:
        """The plan's launches as one CUDA graph, captured the first time this set of
        buffer addresses is seen (variables alternate between two buffers: two graphs); the
        GRAPHS_KEPT most recently replayed are kept."""
        driver = self.device.driver
        sequence = [(function, grid, step.launch.block, step.launch.shared_bytes,
                     [address[self.plan.buffer_slot(s)] for s in step.buffers])
                    for step, function, grid in calls]
        key = tuple(p for *_, pointers in sequence for p in pointers)
        try:
            graph = self.graphs.get(key)
            if graph is None:
                graph = self.graphs[key] = driver.capture(sequence)
                self.device.count("graph_captures")
                while len(self.graphs) > GRAPHS_KEPT:
                    self.graphs.popitem(last=False)
            else:
                self.graphs.move_to_end(key)
            driver.replay(graph)
        except Exception as e:
            kernels = ", ".join(f"{step.kernel} ({self.plan.instr(step.index).describe()})"
                                for step, _, _ in calls[:8])
            raise device_error(e, f"the CUDA graph of kernels {kernels}") from None
        self.device.count("graph_launches")
        self.device.count("launches", len(calls))

    def _check(self, step: CheckStep, host: Dict[int, np.ndarray]) -> None:
        """The instruction's input check, on the host values of its integer operands (the
        others' values are not checked: shape stand-ins)."""
        instr = self.plan.instr(step.index)
        inputs = []
        for s, value in zip(step.operands, instr.operands):
            if s in host:
                inputs.append(host[s])
            else:
                inputs.append(np.broadcast_to(np.zeros((), value.type.dtype.np_dtype),
                                              value.type.shape))
        try:
            instr.op_def.check_inputs(*inputs, **instr.attrs)
        except errors.OpError as e:
            raise type(e)(f"{e.message}\n  in {instr.describe()}") from None

    def _results(self, host: Dict[int, np.ndarray], address: Dict[int, int],
                 outputs: Dict[int, Tuple[object, int, int]]) -> list:
        plan, device = self.plan, self.device
        results: list = [None] * len(plan.func.results)
        updated = {position for position, _, _ in plan.updates}
        for position, result in enumerate(plan.func.results):
            if position not in updated:
                results[position] = host[plan.slots[result.value]]
        for position, s, owns in plan.updates:
            value = plan.values[s]
            shape, dtype = value.type.shape, value.type.dtype.np_dtype
            buffer = plan.buffer_slot(s)
            if owns:
                allocation, addr, _ = outputs.pop(buffer)
            else:  # another variable's buffer, a constant, a parameter: a copy of its own
                nbytes = _nbytes(plan, buffer)
                allocation, addr = device.take(nbytes, _describe(value))
                try:
                    device.driver.copy(addr, address[buffer], nbytes)
                except Exception as e:
                    device.give(allocation, addr, nbytes)
                    raise device_error(e, f"a copy on the GPU for {_describe(value)}") from None
                device.count("copies_on_device")
            results[position] = DeviceValue(device, allocation, addr, shape, dtype)
        return results


def _device_slots(plan: DevicePlan) -> set:
    """Slots some device step reads (constants are uploaded only if one does)."""
    read = set()
    for step in plan.steps:
        if isinstance(step, LaunchStep):
            read.update(plan.buffer_slot(s) for s in step.buffers)
    read.update(plan.buffer_slot(s) for _, s, _ in plan.updates)
    return read


def _nbytes(plan: DevicePlan, slot: int) -> int:
    value = plan.values[slot]
    return value.type.num_elements * value.type.dtype.np_dtype.itemsize


def _host_value(array, value) -> np.ndarray:
    """A host value about to be copied in, as the kernels were compiled for it."""
    array = np.asarray(array)
    shape, dtype = tuple(value.type.shape), value.type.dtype.np_dtype
    if array.shape != shape or array.dtype != dtype:
        raise errors.InternalError(f"a value copied to the GPU for {_describe(value)} is "
                                   f"{array.dtype}{list(array.shape)}, compiled for "
                                   f"{dtype}{list(shape)}")
    return np.ascontiguousarray(array)


def _describe(value) -> str:
    """A value of the plan as the IR prints it (`%name: f32[8,16]`)."""
    return f"%{value.name or value._id}: {value.type}"


def _label(plan: DevicePlan, step) -> Tuple[str, str]:
    if isinstance(step, CopyStep):
        return (_describe(plan.values[step.slot]), f"copy to {step.to} ({step.why})")
    instr = plan.instr(step.index)
    kind = {LaunchStep: "kernel", HostStep: "host", CheckStep: "check"}[type(step)]
    return (instr.describe(), f"{kind} {instr.op}")


def device_error(error: Exception, what: str) -> errors.OpError:
    """A CUDA error as flowjit's: out of memory is ResourceExhaustedError, anything else
    (a launch failure, an illegal address) InternalError, naming the kernel and its op."""
    if isinstance(error, errors.OpError):  # (already flowjit's: a nested step's)
        return error
    text = f"{type(error).__name__}: {error}"
    if _out_of_memory(error):
        return errors.ResourceExhaustedError(f"CUDA ran out of memory in {what}: {text}")
    return errors.InternalError(f"CUDA error in {what}: {text}")


def _out_of_memory(error: Exception) -> bool:
    """Whether a driver's error says the GPU is out of memory: Python's MemoryError,
    pycuda's (pycuda._driver.MemoryError, not a subclass of it) or CUDA's own text."""
    text = str(error)
    return (isinstance(error, MemoryError) or type(error).__name__ == "MemoryError"
            or "out of memory" in text.lower() or "OUT_OF_MEMORY" in text)


# -- the backend ----------------------------------------------------------------------------------
_device: Optional[Device] = None
_device_lock = threading.Lock()


def use_driver(driver) -> Optional[Device]:
    """Makes `driver` the process's device (the tests' emulator; None: back to pycuda's);
    returns the previous Device."""
    global _device
    with _device_lock:
        previous, _device = _device, (Device(driver) if driver is not None else None)
    return previous


def device() -> Device:
    """The process's Device: pycuda's on the first GPU (one context per process)."""
    global _device
    with _device_lock:
        if _device is None:
            from flowjit.runtime.cuda_driver import PyCUDADriver
            _device = Device(PyCUDADriver())
        return _device


def unavailable_reason() -> Optional[str]:
    """Why the CUDA backend cannot run here (pycuda missing, no driver, no GPU), or None."""
    if _device is not None:
        return None
    from flowjit.runtime.cuda_driver import unavailable_reason as reason
    return reason()


class CUDABackend(Backend):
    name = "cuda"
    device = "gpu"
    resident = True  # variables stay in device memory between runs (DeviceValue)

    def require(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise errors.UnavailableError(
                f"The CUDA backend is unavailable: {reason}. Install the `gpu` extra "
                f"(pip install 'flowjit[gpu]') on a machine with an NVIDIA GPU and driver, or "
                f"use backend='llvm' (FLOWJIT_BACKEND=llvm).")

    def compile(self, func: Func, dump: Optional[Callable] = None):
        plan = build_device_plan(func)  # (its PTX and steps are dumped as the `ptx` stage)
        if plan.stats["fallbacks"]:
            log_fallbacks(func.name, plan.stats["fallbacks"])
        executable = DeviceExecutable(plan, device())
        stats = dict(plan.stats, graph=plan.graphable, counters=executable.device.counters)
        return executable.run, stats

    def adopt(self, array: np.ndarray):
        """A variable's value set from the host (load, restore): copied to the device once."""
        if array.dtype.kind in "OUS":
            return array
        return device().upload(array, "variable")

    def from_host(self, array: np.ndarray):
        return device().upload(array, "variable")

    def to_host(self, buffer) -> np.ndarray:
        return np.array(buffer.numpy())


register_backend(CUDABackend())
