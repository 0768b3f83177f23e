"""What one run of an executable does on a GPU, decided when it is built: a pure-Python plan
(no GPU, no pycuda) that a driver carries out (runtime/cuda.py: pycuda on a GPU; the tests:
the GPU emulator on the CPU).

A plan is a list of steps over the Func's values ("slots", as in runtime/cpu.py):
  Launch  a kernel of the executable's PTX module (one per instruction the PTX target
          compiles), its launch configuration (PTXTarget.launch) and its buffers: the
          instruction's results, then its operands;
  Host    an instruction without a GPU kernel (strings, py_func, summaries, random numbers,
          control flow, ...) run by its numpy kernel on the host;
  Copy    host -> device or device -> host, where a value made on one side is read on the
          other: feeds read by kernels (before the first launch), kernel results read by host
          steps, fetched values (after the last launch), new variable values made on the host;
  Check   an instruction's input check (indices and labels in range) on the host, before its
          launch, as on the CPU: its integer operands are on the host (copied if need be).
A value lives on the host, on the device, or on both. On the device it is
  `param`     a variable's resident buffer (the Session keeps a DeviceValue between runs),
  `constant`  uploaded once per executable,
  `output`    a new variable value: its own allocation, which becomes the variable's
              resident buffer when the Session commits the run (a failed run frees it and
              leaves every variable as it was), or
  `arena`     an offset in the executable's arena, allocated once per executable: every
              other value (feeds copied in, kernels' results), packed by liveness
              (runtime/buffers.plan_arena, offsets aligned to 256 bytes).
A reshape of a value on the device is its operand's buffer (no step).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from flowjit import dtypes
from flowjit.codegen.gpu import Launch
from flowjit.graph.registry import ALIAS
from flowjit.interp.evaluate import execute
from flowjit.ir.core import FETCH, VARIABLE, Func, Instr, Value
from flowjit.runtime.buffers import plan_arena

DEVICE, HOST = "device", "host"
ARENA_ALIGN = 256  # bytes: what cudaMalloc guarantees, and a whole number of 128-byte lines


@dataclass(frozen=True)
class LaunchStep:
    kernel: str                # the PTX entry's name
    index: int                 # the instruction's position in the Func's body
    launch: Launch             # grid, block, static shared memory (from the schedule)
    buffers: Tuple[int, ...]   # slots: the results, then the operands
    results: int = 1           # how many of the buffers are results


@dataclass(frozen=True)
class HostStep:
    index: int
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]


@dataclass(frozen=True)
class CopyStep:
    slot: int
    to: str   # DEVICE or HOST
    why: str  # "feed", "variable", "host step", "check", "fetch", "update"


@dataclass(frozen=True)
class CheckStep:
    index: int
    operands: Tuple[int, ...]


Step = Union[LaunchStep, HostStep, CopyStep, CheckStep]


@dataclass
class DevicePlan:
    func: Func
    steps: List[Step]
    slots: Dict[Value, int]
    values: List[Value]                      # slot -> value
    root: Dict[int, int]                     # a reshape's slot -> its operand's buffer's slot
    placement: Dict[int, Tuple[str, int]]    # root slot -> (kind, offset in the arena | 0)
    arena_bytes: int
    constants: Dict[int, np.ndarray]
    param_sides: List[str]                   # where each parameter is read: DEVICE or HOST
    updates: List[Tuple[int, int, bool]]     # (result position, slot, owns its buffer)
    modules: list = field(repr=False, default_factory=list)  # each kernel's LLVM module
    stats: Dict = field(default_factory=dict)

    @property
    def launches(self) -> List[LaunchStep]:
        return [s for s in self.steps if isinstance(s, LaunchStep)]

    @property
    def graphable(self) -> bool:
        """Whether the steps between the first and the last launch are all launches: then a
        run is copies in, one fixed sequence of launches (a CUDA graph), copies out."""
        kinds = [isinstance(s, LaunchStep) for s in self.steps]
        if True not in kinds:
            return False
        first, last = kinds.index(True), len(kinds) - 1 - kinds[::-1].index(True)
        return all(kinds[first:last + 1])

    def instr(self, index: int) -> Instr:
        return self.func.body[index]

    def buffer_slot(self, slot: int) -> int:
        return self.root.get(slot, slot)

    def copies(self) -> List[CopyStep]:
        return [s for s in self.steps if isinstance(s, CopyStep)]

    def ptx(self, target=None) -> str:
        """The PTX module of every kernel (entries named by their LaunchStep.kernel)."""
        from flowjit.codegen.ptx import PTXTarget
        if not self.modules:
            return "// no kernels\n"
        return (target or PTXTarget()).to_ptx(*self.modules)


def on_device(value: Value) -> bool:
    """Whether a value can live in device memory: a static shape, and not strings."""
    return value.type.is_static and value.type.dtype is not dtypes.string


def is_device_alias(instr: Instr) -> bool:
    return instr.op_def.role == ALIAS and all(on_device(v)
                                              for v in instr.operands + instr.results)


def build_device_plan(func: Func, target=None) -> DevicePlan:
    """The plan of `func` on the GPU target `target` (a PTXTarget): see the module's
    docstring. Emits each kernel's LLVM IR (PTX comes later: `DevicePlan.ptx`)."""
    from flowjit.codegen.ptx import PTXTarget
    target = target or PTXTarget()
    values = [p.value for p in func.params] + [r for i in func.body for r in i.results]
    slots = {v: i for i, v in enumerate(values)}
    where: Dict[int, set] = {}
    placement: Dict[int, Tuple[str, int]] = {}
    root: Dict[int, int] = {}
    constants: Dict[int, np.ndarray] = {}
    prologue: List[Step] = []  # copies of parameters to the device: before every launch
    body: List[Step] = []
    modules = []
    fallbacks: List[str] = []
    param_sides = []
    for i, p in enumerate(func.params):
        s = slots[p.value]
        side = DEVICE if p.role == VARIABLE and on_device(p.value) else HOST
        param_sides.append(side)
        where[s] = {side}
        if side == DEVICE:
            placement[s] = ("param", i)

    def need(slot: int, side: str, why: str, steps: List[Step]) -> None:
        if side in where[slot]:
            return
        is_param = slot < len(func.params)
        (prologue if is_param and side == DEVICE else steps).append(CopyStep(slot, side, why))
        where[slot].add(side)

    for index, instr in enumerate(func.body):
        operands = [slots[v] for v in instr.operands]
        results = [slots[r] for r in instr.results]
        if instr.op == "constant":
            constants[results[0]] = execute(instr, [])[0]
            where[results[0]] = {HOST, DEVICE} if on_device(instr.result) else {HOST}
            placement[results[0]] = ("constant", 0)
            continue
        if is_device_alias(instr) and DEVICE in where[operands[0]]:
            root[results[0]] = root.get(operands[0], operands[0])
            where[results[0]] = {DEVICE}
            continue
        if _has_kernel(instr, target):
            for s in operands:
                need(s, DEVICE, "feed" if s < len(func.params) else "host step", body)
            if instr.op_def.check_inputs is not None:
                checked = [s for s, v in zip(operands, instr.operands) if v.type.dtype.is_integer]
                before_any_launch = all(s < len(func.params) or s in constants for s in checked)
                for s in checked:
                    need(s, HOST, "check", body)
                # indices fed or constant are checked before the run's first launch
                (prologue if before_any_launch else body).append(CheckStep(index,
                                                                           tuple(operands)))
            body.append(LaunchStep(f"k{index}", index, target.launch(instr),
                                   tuple(results + operands), len(results)))
            modules.append(target.emit_kernel(instr, f"k{index}"))
            for s in results:
                where[s] = {DEVICE}
        else:
            for s in operands:
                need(s, HOST, "host step", body)
            body.append(HostStep(index, tuple(operands), tuple(results)))
            if not (instr.op_def.role == ALIAS):
                fallbacks.append(f"{instr.op} at {instr.describe()}")
            for s in results:
                where[s] = {HOST}
    epilogue: List[Step] = []
    updates: List[Tuple[int, int, bool]] = []
    claimed = set()
    for position, result in enumerate(func.results):
        s = slots[result.value]
        if result.role == FETCH or not on_device(result.value):
            need(s, HOST, "fetch", epilogue)
            continue
        need(s, DEVICE, "update", epilogue)
        buffer = root.get(s, s)
        owns = buffer not in placement and buffer not in claimed
        if owns:
            claimed.add(buffer)
            placement[buffer] = ("output", 0)
        updates.append((position, s, owns))
    steps = prologue + body + epilogue
    arena_bytes = _place_in_arena(steps, values, root, placement)
    launches = sum(isinstance(s, LaunchStep) for s in steps)
    copies: Dict[str, int] = {}
    for s in steps:
        if isinstance(s, CopyStep):
            copies[s.why] = copies.get(s.why, 0) + 1
    stats = {"native": launches, "numpy": sum(isinstance(s, HostStep) for s in steps),
             "launches": launches, "arena_bytes": arena_bytes, "copies": copies,
             "fallbacks": fallbacks}
    return DevicePlan(func, steps, slots, values, root, placement, arena_bytes, constants,
                      param_sides, updates, modules, stats)


def _has_kernel(instr: Instr, target) -> bool:
    if not all(on_device(v) for v in instr.operands + instr.results):
        return False
    return target.supports(instr)


def _place_in_arena(steps: Sequence[Step], values: List[Value], root: Dict[int, int],
                    placement: Dict[int, Tuple[str, int]]) -> int:
    """Gives every device buffer not placed yet an arena offset, by liveness over the steps;
    returns the arena's size in bytes."""
    first: Dict[int, int] = {}
    last: Dict[int, int] = {}
    for at, step in enumerate(steps):
        written, read = [], []
        if isinstance(step, LaunchStep):
            written, read = step.buffers[:step.results], step.buffers[step.results:]
        elif isinstance(step, CopyStep):
            (written if step.to == DEVICE else read).append(step.slot)
        for s in written:
            first.setdefault(root.get(s, s), at)
            last[root.get(s, s)] = max(last.get(root.get(s, s), at), at)
        for s in read:
            last[root.get(s, s)] = at
    items = [s for s in first if s not in placement]
    sizes = [_nbytes(values[s]) for s in items]
    offsets, total = plan_arena(sizes, [(first[s], last[s]) for s in items], ARENA_ALIGN)
    for s, offset in zip(items, offsets):
        placement[s] = ("arena", offset)
    return total


def _nbytes(value: Value) -> int:
    return value.type.num_elements * value.type.dtype.np_dtype.itemsize


# -- launch configuration: how many blocks the device keeps resident --------------------------
@dataclass(frozen=True)
class DeviceLimits:
    """What bounds how many blocks of a kernel an SM runs at once (an H100's by default)."""

    sm_count: int = 132
    max_threads_per_sm: int = 2048
    max_blocks_per_sm: int = 32
    registers_per_sm: int = 65536
    shared_bytes_per_sm: int = 228 << 10
    max_threads_per_block: int = 1024
    waves: int = 4  # resident grids a grid-stride kernel is launched with, at most


REGISTER_GRANULE = 256  # registers are allocated per warp in units of 256


def resident_blocks(launch: Launch, limits: DeviceLimits, registers_per_thread: int) -> int:
    """Blocks of this launch an SM holds at once: the least of what its threads, registers,
    shared memory and block slots allow (0: the kernel cannot run with this block size)."""
    if launch.block > limits.max_threads_per_block:
        return 0
    warps = -(-launch.block // 32)
    per_warp = -(-max(registers_per_thread, 1) * 32 // REGISTER_GRANULE) * REGISTER_GRANULE
    bounds = [limits.max_threads_per_sm // launch.block, limits.max_blocks_per_sm,
              limits.registers_per_sm // (per_warp * warps)]
    if launch.shared_bytes:
        bounds.append(limits.shared_bytes_per_sm // launch.shared_bytes)
    return max(0, min(bounds))


def occupancy_grid(launch: Launch, limits: DeviceLimits, registers_per_thread: int) -> int:
    """The grid to launch: the schedule's, capped at `waves` full waves of resident blocks
    (the kernels' loops stride over blocks, so any grid computes the whole kernel, and
    blocks beyond what the device keeps resident only queue). ValueError if not even one
    block fits on an SM."""
    resident = resident_blocks(launch, limits, registers_per_thread)
    if resident == 0:
        raise ValueError(f"a block of {launch.block} threads using {registers_per_thread} "
                         f"registers each and {launch.shared_bytes} bytes of shared memory "
                         f"does not fit on one SM")
    return max(1, min(launch.grid, resident * limits.sm_count * limits.waves))


def describe_plan(plan: DevicePlan) -> str:
    """The plan as text, a step per line (flowjit-dump's `device-plan` stage)."""
    lines = [f"; arena {plan.arena_bytes} bytes, {len(plan.launches)} launches, "
             f"{'one CUDA graph' if plan.graphable else 'launched one by one'}"]

    def name(slot: int) -> str:
        kind, offset = plan.placement.get(plan.buffer_slot(slot), ("host", 0))
        where = f"arena+{offset}" if kind == "arena" else kind
        return f"%{slot}({where})"

    for step in plan.steps:
        if isinstance(step, LaunchStep):
            l = step.launch
            lines.append(f"launch {step.kernel} grid={l.grid} block={l.block} "
                         f"shared={l.shared_bytes} ({', '.join(map(name, step.buffers))})"
                         f"    ; {plan.instr(step.index).describe()}")
        elif isinstance(step, HostStep):
            lines.append(f"host {plan.instr(step.index).op} ({', '.join(map(name, step.inputs))})"
                         f" -> ({', '.join(map(name, step.outputs))})")
        elif isinstance(step, CopyStep):
            lines.append(f"copy {name(step.slot)} to {step.to} ({step.why})")
        else:
            lines.append(f"check {plan.instr(step.index).op} "
                         f"({', '.join(map(name, step.operands))})")
    return "\n".join(lines) + "\n"
