"""The CPU executable: the optimized IR as a sequence of thunks, one per instruction.

An instruction the code generator handles (elementwise and fused loops, reductions, matmul
with its epilogue) runs as a native kernel; any other runs its numpy reference kernel. Every
native call is preceded by a check that each buffer has exactly the shape and dtype the
kernel was compiled for, so generated code never reads or writes out of bounds.
"""
from __future__ import annotations

import ctypes
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.client.tracing import instr_label
from flowjit.codegen import kernels
from flowjit.codegen.schedule import Schedule, format_schedule, schedule, schedule_key
from flowjit.codegen.segment import KernelCall, emit_segment, kernel_ids, segment_has_room
from flowjit.codegen.target import CompiledKernel, CPUTarget, cpu_target, kernel_function
from flowjit.graph.registry import ALIAS
from flowjit.interp.evaluate import execute
from flowjit.ir.core import FETCH, Func, Instr, Value, structure_key
from flowjit.runtime.buffers import (ALIGN, FIXED, BufferPool, OutputSpec, data_address,
                                     output_policy, plan_arena)
from flowjit.runtime.control_flow import CONTROL_FLOW_OPS, build_thunk
from flowjit.runtime.threads import WorkerPool, worker_pool


# Kernels with less work than this run on one core: elements for loops, flops for matmul.
# With the native pool a share reaches another core in ~2 us. Measured (benchmarks/
# thresholds.py): 1.15x at 2^14 elements of a fused chain, 1.75x at 2^16; matmuls gain
# nothing at 2^20 flops, 1.5x at 2^22.
PARALLEL_MIN_WORK = {"contraction": 1 << 21}
PARALLEL_MIN_ELEMENTS = 1 << 15
CHUNKS_PER_THREAD = 2  # a share per thread and a spare: a late or busy core delays less
# Native calls with less work than this keep the GIL (see `native_call`).
GIL_HELD_MAX_WORK = 1 << 14


def shares(info: kernels.KernelInfo, pool: Optional[WorkerPool]) -> Optional[int]:
    """Rows per share when the kernel is worth splitting across the pool, else None."""
    threshold = PARALLEL_MIN_WORK.get(info.kind, PARALLEL_MIN_ELEMENTS)
    return _grain(info.extent, info.work_per_row, threshold, info.align, pool)


def runs_alone(info: kernels.KernelInfo, grain: Optional[int]) -> bool:
    """Whether a kernel that runs whole on this thread (no `grain`) calls its `alone`
    function instead of its prepare and kernel functions."""
    return grain is None and info.alone is not None


def prepare_shares(info: kernels.KernelInfo, pool: Optional[WorkerPool]) -> Optional[int]:
    """Units per share of the kernel's prepare function (packing: work in elements), or
    None: run it on this thread."""
    if info.prepare is None:
        return None
    return _grain(info.prepare_extent, info.prepare_work, PARALLEL_MIN_ELEMENTS, 1, pool)


def _grain(extent: int, work_per_row: int, threshold: int, align: int,
           pool: Optional[WorkerPool]) -> Optional[int]:
    units = -(-extent // align)  # shares are whole multiples of `align` rows
    if pool is None or units < 2 or extent * work_per_row < threshold:
        return None
    chunks = min(units, pool.size * CHUNKS_PER_THREAD)
    return -(-units // chunks) * align


def native_call(address: int, work: int):
    """A native function `f(table, ...)` to call with ctypes objects only (a table of
    pointers, prebuilt c_int64s and c_void_ps). Declared argument types would convert each
    argument on every call (about 0.1 us each); without them ctypes passes an array by
    address and a scalar object by value. Calls with little work keep the GIL: releasing
    and retaking it costs more than they run, and retaking it waits while another thread
    runs Python."""
    return (_HOLDING_GIL if work <= GIL_HELD_MAX_WORK else _RELEASING_GIL)(address)


_HOLDING_GIL = ctypes.PYFUNCTYPE(None)  # (PYFUNCTYPE makes a new class per call: once here)
_RELEASING_GIL = ctypes.CFUNCTYPE(None)
_ZERO = ctypes.c_int64(0)


def call_work(info: kernels.KernelInfo) -> int:
    """A kernel's work, its prepare function's (packing) included, as `shares` counts it."""
    return info.extent * info.work_per_row + (info.prepare_extent * info.prepare_work
                                              if info.prepare else 0)


class InputCheck:
    """One input buffer of a native call: the slot it comes from and the shape, dtype and
    dense strides it was compiled for, checked before every call, so generated code never
    reads out of bounds. The address of the last read-only array it passed is kept: such
    arrays (the executable's own buffers, constants, state, the fast path's fed numbers:
    graph/fast_path.py) come back run after run, and an array's data does not move. The
    array is held by a weak reference: a read-only array the user fed stays theirs to
    free."""

    __slots__ = ("slot", "shape", "dtype", "strides", "owner", "seen", "seen_address")

    def __init__(self, slot: int, value: Value, owner: str) -> None:
        self.slot = slot
        self.shape = tuple(value.type.shape)
        self.dtype = value.type.dtype.np_dtype
        self.strides = dense_strides(self.shape, self.dtype)
        self.owner = owner  # what reads it, for errors
        self.seen: Callable[[], Optional[np.ndarray]] = _nothing_seen
        self.seen_address = 0

    def address(self, slots: List[Optional[np.ndarray]]) -> int:
        """The address of this input's array in `slots`, checked (a non-contiguous one is
        replaced there by a contiguous copy; a wrong shape or dtype is an InternalError)."""
        array = slots[self.slot]
        dtype = array.dtype  # (`is` first: comparing dtypes costs more than the rest)
        if array.strides != self.strides or array.shape != self.shape or \
                (dtype is not self.dtype and dtype != self.dtype):
            _check_input(slots, self.slot, self.shape, self.dtype, self.owner)
            array = slots[self.slot]
        if array is self.seen():
            return self.seen_address
        address = data_address(array)
        if not array.flags.writeable:
            self.seen, self.seen_address = weakref.ref(array), address
        return address


def _nothing_seen() -> None:
    return None


class NativeThunk:
    """Calls one compiled kernel: buffers are [*outputs, *inputs, scratch]."""

    __slots__ = ("kernel", "call", "instr", "checks", "outputs", "specs", "info", "extent_arg",
                 "args_type", "args", "precondition", "simple", "pool", "grain", "prepare",
                 "scratch", "prepare_address", "prepare_grain", "prepare_pool")

    def __init__(self, kernel, instr: Instr, inputs: List[int], outputs: List[int],
                 info: kernels.KernelInfo, specs: List[OutputSpec],
                 pool: Optional[WorkerPool]) -> None:
        self.kernel = kernel  # owns the code: alive as long as this thunk
        self.instr = instr
        self.outputs = outputs
        self.info = info
        self.extent_arg = ctypes.c_int64(info.extent)  # (prebuilt: see native_call)
        self.specs = specs
        owner = f"the kernel for {instr.describe()}"
        self.checks = [InputCheck(slot, v, owner) for slot, v in zip(inputs, instr.operands)]
        self.args_type = ctypes.c_void_p * (len(outputs) + len(inputs) + 1)
        # the simple path's arguments, reused (runs of an executable never overlap), with
        # fixed outputs' addresses set once
        self.args = self.args_type(*[spec.address for spec in specs])
        self.precondition = instr.op_def.check_inputs
        self.grain = shares(info, pool)
        self.pool = pool if self.grain is not None else None
        prepare = info.prepare
        if runs_alone(info, self.grain):  # (it packs too: a declared call costs it nothing)
            prepare, self.call = None, kernel_function(kernel, info.alone)
        else:
            self.call = native_call(kernel.address, call_work(info))
        self.prepare = kernel_function(kernel, prepare) if prepare else None
        self.prepare_address = kernel.module.address(prepare) if prepare else 0
        self.prepare_grain = prepare_shares(info, pool) if prepare else None
        self.prepare_pool = pool if self.prepare_grain is not None else None
        self.scratch: Optional[np.ndarray] = None  # made on the first run, then reused
        # The common case gets a lean path: one output, one thread, nothing else to do.
        self.simple = (len(outputs) == 1 and self.pool is None and not info.scratch
                       and self.precondition is None and info.extent > 0)

    def run(self, slots: List[Optional[np.ndarray]], buffers: Optional[BufferPool]) -> None:
        if self.simple:
            self.run_simple(slots, buffers)
            return
        args = self.args_type()
        position = 0
        outs = []
        for spec in self.specs:
            out, args[position] = spec.buffer(buffers)
            outs.append(out)
            position += 1
        for check in self.checks:
            args[position] = check.address(slots)
            position += 1
        inputs = [slots[check.slot] for check in self.checks]
        if self.precondition is not None:  # generated code does not raise: check first
            try:
                self.precondition(*inputs, **self.instr.attrs)
            except errors.OpError as e:
                raise type(e)(f"{e.message}\n  in {self.instr.describe()}") from None
        self._scratch(args, position)
        extent = self.info.extent
        if extent > 0:  # (else the output is empty: nothing to compute)
            if self.prepare_pool is not None:
                self.prepare_pool.parallel_for(self.prepare_pool.memory, self.prepare_address,
                                               args, 0, self.info.prepare_extent,
                                               self.prepare_grain)
            elif self.prepare is not None:
                self.prepare(args, 0, self.info.prepare_extent)
            if self.pool is not None:
                self.pool.parallel_for(self.pool.memory, self.kernel.address, args, 0,
                                       extent, self.grain)
            else:
                self.call(args, _ZERO, self.extent_arg)
        for slot, out in zip(self.outputs, outs):
            slots[slot] = out

    def run_simple(self, slots: List[Optional[np.ndarray]],
                   buffers: Optional[BufferPool]) -> None:
        """`run` of a `simple` thunk: one output, one thread, no scratch or precondition."""
        args, spec = self.args, self.specs[0]
        out = spec.fixed
        if out is None:
            out, args[0] = spec.buffer(buffers)
        position = 1
        for check in self.checks:
            args[position] = check.address(slots)
            position += 1
        self.call(args, _ZERO, self.extent_arg)
        slots[self.outputs[0]] = out

    def _scratch(self, args, position: int) -> Optional[np.ndarray]:
        """Scratch for this call: written by `prepare` (or one share), read by the shares.
        Made once (a packed GEMM operand is megabytes: a fresh allocation per run would
        fault its pages in every time); runs of one executable do not overlap (Session)."""
        if not self.info.scratch:
            return None
        if self.scratch is None:
            self.scratch = np.empty(self.info.scratch, np.uint8)
        args[position] = self.scratch.ctypes.data
        return self.scratch


def dense_strides(shape, dtype: np.dtype) -> tuple:
    """The byte strides numpy gives a C-contiguous array of `shape`."""
    strides, step = [], np.dtype(dtype).itemsize
    for d in reversed(tuple(shape)):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _check_input(slots, slot: int, shape, dtype, what: str) -> None:
    """An input of the wrong shape or dtype is a bug (InternalError: never a wild read); a
    non-contiguous one (a numpy kernel's view) is copied."""
    array = slots[slot]
    if array.shape != shape or array.dtype != dtype:
        raise errors.InternalError(f"an input buffer of {what} is {array.dtype}"
                                   f"{list(array.shape)}, compiled for {dtype}{list(shape)}")
    slots[slot] = np.ascontiguousarray(array)


class SegmentLayout:
    """Where a segment's buffers sit in its table, and its calls: a function of the
    segment's instructions alone (their dataflow, not which values they are), so that the
    driver's code is too. Entry 0 is a null pointer; `values` lists every other value's
    entry in order of first use, `scratch` each kernel's scratch entry."""

    def __init__(self, instrs: List[Instr], infos: List[kernels.KernelInfo],
                 indices: List[int], pool: Optional[WorkerPool]) -> None:
        # an alias's result is its operand's buffer: `root` maps it (through chains) there
        self.root: Dict[Value, Value] = {}
        for instr in instrs:
            if is_alias(instr):
                self.root[instr.result] = self.root.get(instr.operands[0], instr.operands[0])
        last_use: Dict[Value, int] = {}
        for step, instr in enumerate(instrs):
            for value in instr.operands:
                last_use[self.root.get(value, value)] = step
        self.values: Dict[Value, Tuple[int, int, int]] = {}  # value -> (index, first, last)
        self.scratch: List[Tuple[int, int, int]] = []  # (index, bytes, step)
        self.calls: List[KernelCall] = []
        self.size = 1
        self.work = 0  # of all its kernels, as `shares` counts it

        def index_of(value: Value, step: int) -> int:
            value = self.root.get(value, value)
            if value not in self.values:
                self.values[value] = (self.size, step, last_use.get(value, step))
                self.size += 1
            return self.values[value][0]

        for step, (instr, info, at) in enumerate(zip(instrs, infos, indices)):
            if is_alias(instr):
                continue
            buffers = [index_of(r, step) for r in instr.results]
            buffers += [index_of(v, step) for v in instr.operands]
            scratch = 0
            if info.scratch:
                scratch = self.size
                self.scratch.append((scratch, info.scratch, step))
                self.size += 1
            self.work += call_work(info)
            grain = shares(info, pool)
            if runs_alone(info, grain):
                self.calls.append(KernelCall(info.alone, buffers + [scratch], info.extent,
                                             None))
                continue
            self.calls.append(KernelCall(f"k{at}", buffers + [scratch], info.extent,
                                         grain, info.prepare,
                                         info.prepare_extent, prepare_shares(info, pool)))


class NativeSegment:
    """Consecutive native kernels run by one native call (codegen/segment.py). Values made
    and used only inside the segment live in its arena (runtime/buffers.py); the others
    (read later by Python, or results) get buffers by their OutputSpec."""

    __slots__ = ("entry", "compiled", "table", "arena", "inputs", "outputs", "fixed",
                 "views", "pool_memory", "instrs")

    def __init__(self, compiled, layout: SegmentLayout, instrs: List[Instr],
                 slot: Dict[Value, int], specs: Dict[Value, OutputSpec],
                 pool: Optional[WorkerPool]) -> None:
        self.instrs = instrs
        self.compiled = compiled  # owns the code
        self.entry = native_call(compiled.address("segment"), layout.work)
        self.pool_memory = ctypes.c_void_p(pool.memory if pool is not None else None)
        made_here = {r for instr in instrs for r in instr.results}
        owner = f"the native segment starting at {instrs[0].describe()}"
        self.inputs: List[Tuple[int, InputCheck]] = []  # (table index, its check)
        self.outputs: List[Tuple[int, int, OutputSpec]] = []  # (slot, table index, spec)
        # aliases read after the segment: (their slot, their root's slot, shape)
        self.views = [(slot[alias], slot[root], tuple(alias.type.shape))
                      for alias, root in layout.root.items() if alias in specs]
        seen_through = {root: specs[alias] for alias, root in layout.root.items()
                        if alias in specs}  # a root that Python sees through an alias
        arena_items = [(index, size, (step, step)) for index, size, step in layout.scratch]
        for value, (index, first, last) in layout.values.items():
            shape, dtype = tuple(value.type.shape), value.type.dtype.np_dtype
            if value not in made_here:
                self.inputs.append((index, InputCheck(slot[value], value, owner)))
            elif value in specs:  # read after the segment: see runtime/buffers.py
                self.outputs.append((slot[value], index, specs[value]))
            elif value in seen_through:  # its memory, as an alias's (same bytes, policy)
                spec = OutputSpec(shape, dtype, seen_through[value].policy)
                self.outputs.append((slot[value], index, spec))
            else:
                size = value.type.num_elements * np.dtype(dtype).itemsize
                arena_items.append((index, size, (first, last)))
        offsets, total = plan_arena([size for _, size, _ in arena_items],
                                    [life for _, _, life in arena_items])
        self.arena = np.empty(total + ALIGN, np.uint8)
        base = -(-self.arena.ctypes.data // ALIGN) * ALIGN
        self.table = (ctypes.c_void_p * layout.size)()
        for (index, _, _), offset in zip(arena_items, offsets):
            self.table[index] = base + offset
        for _, index, spec in self.outputs:  # fixed buffers: their addresses, once
            if spec.fixed is not None:
                self.table[index] = spec.address
        self.fixed = [(slot, spec.fixed) for slot, _, spec in self.outputs
                      if spec.fixed is not None]
        self.outputs = [out for out in self.outputs if out[2].fixed is None]

    def run(self, slots: List[Optional[np.ndarray]], buffers: Optional[BufferPool]) -> None:
        table = self.table
        for index, check in self.inputs:
            table[index] = check.address(slots)
        outs = []
        for slot, index, spec in self.outputs:
            out, table[index] = spec.buffer(buffers)
            outs.append((slot, out))
        self.entry(table, self.pool_memory)
        for slot, out in outs:
            slots[slot] = out
        for slot, out in self.fixed:
            slots[slot] = out
        for slot, root, shape in self.views:
            slots[slot] = slots[root].reshape(shape)


class NumpyThunk:
    """Runs one instruction with the interpreter's numpy kernel."""

    __slots__ = ("instr", "inputs", "outputs")

    def __init__(self, instr: Instr, inputs: List[int], outputs: List[int]) -> None:
        self.instr, self.inputs, self.outputs = instr, inputs, outputs

    def run(self, slots: List[Optional[np.ndarray]], buffers: Optional[BufferPool]) -> None:
        results = execute(self.instr, [slots[i] for i in self.inputs])
        for slot, value in zip(self.outputs, results):
            slots[slot] = value


def build(func: Func, target: Optional[CPUTarget] = None, dump: Optional[Callable] = None,
          keep_intermediates: bool = False
          ) -> Tuple[Callable[..., List[np.ndarray]], Dict[str, Any]]:
    """The run function of `func` on the CPU, and statistics: how many instructions are
    native or numpy, how many native segments, their arenas' bytes, how many kernels were
    emitted (equal ones once per module), the most kernels in one module, and which
    instructions run as numpy on the host (`fallbacks`, logged with FLOWJIT_LOG=fallback).
    Consecutive native instructions run as segments (one native call each, of a bounded
    size: codegen/segment.py) unless `keep_intermediates`, which keeps every value for
    `run(inputs, trace)`.
    `dump(stage, text)` receives the kernels' schedules, and their LLVM IR as generated and
    as optimized."""
    target = target or cpu_target()
    pool = worker_pool(target)
    slot: Dict[Value, int] = {}
    for value in [p.value for p in func.params] + [r for i in func.body for r in i.results]:
        slot[value] = len(slot)
    constants: Dict[int, np.ndarray] = {}  # slot -> value, computed once, here
    schedules: Dict[int, Schedule] = {}  # body index -> its kernel's schedule
    groups: List[Tuple[str, List[int]]] = []  # ("numpy" | "native" | "segment", indices)
    for index, instr in enumerate(func.body):
        if instr.op == "constant":
            value = execute(instr, [])[0]
            value.setflags(write=False)  # shared by every run: fetches of it are copied
            constants[slot[instr.result]] = value
            continue
        if instr.op in CONTROL_FLOW_OPS:  # a thunk running its regions' executables
            groups.append(("control", [index]))
            continue
        if is_alias(instr):  # inside a segment: the operand's buffer, seen with another shape
            if keep_intermediates:
                groups.append(("numpy", [index]))
            elif groups and groups[-1][0] == "segment" and \
                    segment_has_room([func.body[i] for i in groups[-1][1]], instr):
                groups[-1][1].append(index)
            else:
                groups.append(("segment", [index]))
            continue
        sched = schedule(instr, target)
        if sched is None or not kernels.can_emit(sched):
            groups.append(("numpy", [index]))
            continue
        schedules[index] = sched
        if sched.kind == "contraction":  # its kernel calls the shared GEMM core by name
            target.ensure_gemm_core(instr.result.type.dtype)
        checked = instr.op_def.check_inputs is not None
        if keep_intermediates or checked:  # (checks run in Python, on visible inputs)
            groups.append(("native", [index]))
        elif groups and groups[-1][0] == "segment" and segment_has_room(
                [func.body[i] for i in groups[-1][1]], instr):
            groups[-1][1].append(index)
        else:
            groups.append(("segment", [index]))
    # a group of aliases alone has nothing to run natively: numpy's reshape is a view
    regrouped: List[Tuple[str, List[int]]] = []
    for what, indices in groups:
        if what == "segment" and all(is_alias(func.body[i]) for i in indices):
            regrouped.extend(("numpy", [i]) for i in indices)
        else:
            regrouped.append((what, indices))
    groups = regrouped
    fetched = {r.value for r in func.results if r.role == FETCH}
    assigned = {r.value for r in func.results if r.role != FETCH}
    escaping = fetched | assigned
    group_of = {index: g for g, (_, indices) in enumerate(groups) for index in indices}
    owner: Dict[Value, int] = {r: group_of.get(i, -1) for i, instr in enumerate(func.body)
                               for r in instr.results}
    for index, instr in enumerate(func.body):
        for value in instr.operands:  # read outside the group that made it: Python sees it
            if owner.get(value, -1) != group_of.get(index, -2):
                escaping.add(value)

    thunks: list = []
    stats = {"native": 0, "numpy": 0, "segments": 0, "arena_bytes": 0, "kernels_emitted": 0,
             "largest_segment": 0, "fallbacks": []}
    specs = {v: OutputSpec(v.type.shape, v.type.dtype.np_dtype,
                           output_policy(v.type, v in fetched, v in assigned))
             for v in escaping if v in owner and v.type.is_static}  # (what kernels write)
    modules = []
    for what, indices in groups:
        if what == "control":
            instr = func.body[indices[0]]
            thunks.append(build_thunk(instr, [slot[v] for v in instr.operands],
                                      [slot[r] for r in instr.results],
                                      lambda region: build(region, target), stats))
            continue
        if what == "numpy":
            instr = func.body[indices[0]]
            thunks.append(NumpyThunk(instr, [slot[v] for v in instr.operands],
                                     [slot[r] for r in instr.results]))
            stats["numpy"] += 1
            if not is_alias(instr):  # (a reshape alone is numpy's view: no work)
                stats["fallbacks"].append(f"{instr.op} at {instr.describe()}")
            continue
        stats["native"] += len(indices)
        # Names local to the module, one kernel per distinct computation: a module's text
        # does not depend on where its instructions are, so equal modules compile once.
        instrs = [func.body[i] for i in indices]
        ids = kernel_ids(instrs)
        stats["kernels_emitted"] += len(set(ids))
        stats["largest_segment"] = max(stats["largest_segment"], len(indices))

        def make(indices=indices, instrs=instrs, ids=ids) -> Tuple[Any, list]:
            """The module of this group's kernels (and segment driver), and their infos."""
            module = target.new_module("segment" if indices[1:] else "kernel")
            emitted: Dict[int, kernels.KernelInfo] = {}
            for at, kernel_id in zip(indices, ids):
                if kernel_id not in emitted and at in schedules:  # (aliases: no kernel)
                    emitted[kernel_id] = kernels.emit_kernel(module, f"k{kernel_id}",
                                                             schedules[at], target)
            infos = [emitted.get(kernel_id) for kernel_id in ids]
            if indices[1:]:
                emit_segment(module, "segment", SegmentLayout(instrs, infos, ids, pool).calls)
            return module, infos

        # Keyed by the optimized IR of its kernels: a warm disk cache skips code generation.
        what = f"instruction {indices[0]}: {instrs[0].describe()}" if len(indices) == 1 \
            else f"instructions {indices[0]}-{indices[-1]} (one segment)"
        def make_text(make=make) -> Tuple[str, list]:
            module, infos = make()
            return str(module), infos
        compiled, infos = target.compile_cached(
            module_source(instrs, [schedules.get(i) for i in indices], pool), make_text, what)
        if dump is not None:
            modules.append((what, make()[0]))
        if len(indices) == 1:
            instr, info = instrs[0], infos[0]
            kernel = CompiledKernel(compiled, "k0")
            thunks.append(NativeThunk(kernel, instr, [slot[v] for v in instr.operands],
                                      [slot[r] for r in instr.results], info,
                                      [specs.get(r) or OutputSpec(r.type.shape,
                                                                  r.type.dtype.np_dtype, FIXED)
                                       for r in instr.results], pool))  # (FIXED: unread)
        else:
            segment = NativeSegment(compiled, SegmentLayout(instrs, infos, ids, pool), instrs,
                                    slot, specs, pool)
            thunks.append(segment)
            stats["segments"] += 1
            stats["arena_bytes"] += segment.arena.nbytes - ALIGN
    if dump is not None:
        dump("kernels", "".join(format_schedule(schedules[i], f"instruction {i}")
                                for i in sorted(schedules)))
        _dump_kernels(modules, target, dump)
    n_params = len(func.params)
    result_slots = [slot[r.value] for r in func.results]
    only_result = result_slots[0] if len(result_slots) == 1 else None  # (the usual run)
    initial: List[Optional[np.ndarray]] = [None] * (len(slot) - n_params)
    for index, value in constants.items():
        initial[index - n_params] = value

    labels = [thunk_label(thunk) for thunk in thunks]
    steps = [thunk.run_simple if isinstance(thunk, NativeThunk) and thunk.simple else thunk.run
             for thunk in thunks]  # (bound once: a tiny run is a few such calls)

    def run(inputs: Sequence[np.ndarray], buffers: Optional[BufferPool] = None,
            trace: Optional[Dict[Value, np.ndarray]] = None,
            timer: Optional[Callable[[Tuple[str, str], int, int], None]] = None
            ) -> List[np.ndarray]:
        """The results of one run. Fixed buffers (runtime/buffers.py) are read-only and
        reused by the next run: the caller copies what it keeps. `timer(label, start_ns,
        end_ns)` receives each thunk's wall-clock time (a traced run: client/tracing.py)."""
        slots: List[Optional[np.ndarray]] = [*inputs, *initial]
        if timer is None:
            for step in steps:
                step(slots, buffers)
        else:
            for step, label in zip(steps, labels):
                start = time.time_ns()
                step(slots, buffers)
                timer(label, start, time.time_ns())
        if trace is not None:  # every intermediate value (copied), for finding divergences
            trace.update((value, None if slots[i] is None else np.array(slots[i]))
                         for value, i in slot.items())
        if only_result is not None:
            return [slots[only_result]]
        return [slots[i] for i in result_slots]

    return run, stats


def is_alias(instr: Instr) -> bool:
    """A reshape with static shapes: inside a segment, its operand's buffer."""
    return instr.op_def.role == ALIAS and all(v.type.is_static
                                              for v in instr.operands + instr.results)


def thunk_label(thunk) -> Tuple[str, str]:
    """(node name, kind) of a thunk in a run's trace: the user's op it computes, or the first
    and last ops of a segment; the kind says how it runs (native kernel, segment, numpy)."""
    if isinstance(thunk, NativeSegment):
        first, last = instr_label(thunk.instrs[0])[0], instr_label(thunk.instrs[-1])[0]
        return (f"{first} .. {last}", f"native segment of {len(thunk.instrs)} kernels")
    name, op = instr_label(thunk.instr)
    return name, f"{'native' if isinstance(thunk, NativeThunk) else 'numpy'} {op}"


def module_source(instrs: List[Instr], scheds: List[Optional[Schedule]],
                  pool: Optional[WorkerPool]) -> str:
    """What decides the code of a group's module: each kernel's computation (its optimized
    IR, as a structure key) and schedule (with what the op table contributed: index maps,
    combiners, tiles), the dataflow between them, and the worker pool's size (it decides
    the segment's shares). The target adds itself and the code generator's files."""
    number: Dict[Value, int] = {}
    lines = [f"pool {pool.size if pool is not None else 0}"]
    for instr, sched in zip(instrs, scheds):
        operands = [number.setdefault(v, len(number)) for v in instr.operands]
        results = [number.setdefault(r, len(number)) for r in instr.results]
        lines.append(f"{results} = {operands} {structure_key(instr)!r}")
        if sched is not None:
            lines.append(f"  {schedule_key(sched)}")
    return "\n".join(lines)


def _dump_kernels(modules, target: CPUTarget, dump: Callable) -> None:
    dump("llvm", "".join(f"; {what}\n{m}\n" for what, m in modules))
    dump("llvm-opt", "".join(f"; {what}\n{target.optimized_ir(m)}\n" for what, m in modules))
