"""Compilation, in stages (each one dumpable):

    graph plan --lower--> ir --passes--> opt --backend--> Executable

The eager backend evaluates the optimized IR with the numpy interpreter; the LLVM and PTX
backends will code-generate it.
"""
from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import logging

from flowjit.config import config
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.plan import RunPlan
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import Func, TensorType
from flowjit.ir.printer import print_func
from flowjit.lower import lower_plan
from flowjit.passes.manager import PassManager, default_pipeline, pipeline_from_names
from flowjit.runtime.executable import Executable


_logger = logging.getLogger("flowjit")


@dataclass(frozen=True)
class CompileOptions:
    """What changes the compiled code (and so is part of a cache key). Dumping is not."""

    backend: str = "eager"
    passes: Optional[Tuple[str, ...]] = None      # None: the default pipeline
    disabled_passes: Tuple[str, ...] = ()
    verify: bool = False

    @staticmethod
    def from_config(backend: str) -> "CompileOptions":
        return CompileOptions(backend=backend, passes=config.passes,
                              disabled_passes=config.disabled_passes, verify=config.verify_ir)


# Executables are numbered per dump directory, in compilation order: deterministic for a
# given program, whatever else the process compiled before.
_dump_counters: Dict[str, "itertools.count[int]"] = {}


def optimize(func: Func, options: CompileOptions, dump_to: Optional[str] = None) -> Func:
    passes = default_pipeline() if options.passes is None else pipeline_from_names(
        options.passes)
    dump = _stage_writer(dump_to) if dump_to else None
    manager = PassManager(passes, verify=options.verify, dump=dump,
                          disabled=options.disabled_passes)
    optimized = manager.run(func)
    if dump:
        dump("opt", optimized)
    if config.log_passes:
        _logger.info("passes of %s: %s", func.name, ", ".join(
            f"{r.name} {r.seconds * 1e3:.2f} ms{' (changed)' if r.changed else ''}"
            for r in manager.records))
    return optimized


def compile_plan(plan: RunPlan, feed_types: Mapping[Tensor, TensorType],
                 variable_types: Mapping[Operation, TensorType],
                 options: CompileOptions) -> Executable:
    name = _func_name(plan)
    func = lower_plan(plan, feed_types, variable_types, name)
    dump_to = None
    if config.dump_dir:
        counter = _dump_counters.setdefault(config.dump_dir, itertools.count())
        dump_to = os.path.join(config.dump_dir, f"{next(counter):03d}-{name}")
    optimized = optimize(func, options, dump_to)
    if dump_to:
        _dump_ptx(optimized, _stage_writer(dump_to, clear=False))
    if options.backend == "llvm":
        from flowjit.runtime import cpu
        run_fn, _stats = cpu.build(optimized, dump=_stage_writer(dump_to, clear=False)
                                   if dump_to else None)
        return Executable(optimized, plan, options.backend, run_fn)
    return Executable(optimized, plan, options.backend,
                      lambda inputs, buffers=None, timer=None: evaluate(optimized, inputs,
                                                                        timer=timer))


def _func_name(plan: RunPlan) -> str:
    """A readable, deterministic name: the first fetch or target."""
    first = (plan.fetches + plan.targets)[0]
    name = first.name.split(":")[0] if isinstance(first, Tensor) else first.name
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


STAGE_EXTENSIONS = {"kernels": ".sched", "llvm": ".ll", "llvm-opt": ".ll",
                    "ptx": ".ptx"}  # others: ".ir"


def _stage_writer(directory: str, clear: bool = True):
    """write(stage, Func or text) -> <directory>/<stage>.<ir|ll|ptx>."""
    os.makedirs(directory, exist_ok=True)
    if clear:
        for stale in os.listdir(directory):  # an earlier run's stages must not mix in
            if stale.endswith((".ir", ".sched", ".ll", ".ptx")):
                os.remove(os.path.join(directory, stale))

    def write(stage: str, content) -> None:
        text = print_func(content, elide_constants_over=16) if isinstance(content, Func) \
            else content
        path = os.path.join(directory, stage + STAGE_EXTENSIONS.get(stage, ".ir"))
        with open(path, "w") as f:
            f.write(text)
    return write


def _dump_ptx(func: Func, write) -> None:
    """The PTX of each kernel the GPU target can compile (elementwise ones, for now)."""
    try:
        from flowjit.codegen.ptx import PTXTarget
        target = PTXTarget()
    except Exception as e:  # an llvmlite built without NVPTX
        write("ptx", f"// no PTX: {e}\n")
        return
    from flowjit.codegen.ptx import PTXUnsupportedError
    parts = []
    for index, instr in enumerate(func.body):
        if target.supports(instr):
            header = f"// instruction {index}: {instr.op} at {instr.describe()}\n"
            try:
                ptx = target.to_ptx(target.emit_kernel(instr, f"kernel{index}"))
            except PTXUnsupportedError as e:  # dumping never fails a run
                ptx = f"// not compiled to PTX: {e}\n"
            parts.append(header + ptx)
    write("ptx", "\n".join(parts) or "// no kernel of this function compiles to PTX yet\n")
