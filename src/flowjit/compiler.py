"""Compilation, in stages (each one dumpable):

    graph plan --lower--> ir --passes--> opt --backend--> Executable

The backend (runtime/backends.py: a registry) turns the optimized IR into a run function:
the eager one evaluates it with the numpy interpreter, the LLVM one code-generates it.
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
from flowjit.ir.core import Func, TensorType
from flowjit.ir.printer import print_func
from flowjit.lower import lower_plan
from flowjit.passes.manager import PassManager, default_pipeline, pipeline_from_names
from flowjit.runtime.backends import get_backend
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
    backend = get_backend(options.backend)
    run_fn, stats = backend.compile(optimized, dump=_stage_writer(dump_to, clear=False)
                                    if dump_to else None)
    return Executable(optimized, plan, backend.name, run_fn, stats)


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
    """The PTX module the CUDA backend would load for this executable (every kernel of its
    device plan, in one module that ptxas assembles), after the plan as comments: which
    kernel computes which op, with what launch, and the copies and host steps around them.
    Dumping never fails a run."""
    try:
        from flowjit.codegen.ptx import PTXTarget
        from flowjit.runtime.device_plan import build_device_plan, describe_plan
        target = PTXTarget()
        plan = build_device_plan(func, target)
        header = "".join(f"// {line}\n" for line in describe_plan(plan).splitlines())
        text = header + (plan.ptx(target) if plan.launches else
                         "// no kernel of this function compiles to PTX\n")
    except Exception as e:  # an llvmlite without NVPTX, math the GPU lacks
        text = f"// not compiled to PTX: {type(e).__name__}: {e}\n"
    write("ptx", text)
