"""The pass pipeline: ordered passes, verification after each, timing, dumps.

    manager = PassManager(default_pipeline(), verify=True, dump=write_stage)
    optimized = manager.run(func)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from flowjit.ir.core import COND, WHILE, Func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import verify

PassFn = Callable[[Func], Tuple[Func, bool]]


@dataclass(frozen=True)
class Pass:
    name: str
    run: PassFn


@dataclass
class PassRecord:
    name: str
    seconds: float
    changed: bool


@dataclass
class PassManager:
    """Runs `passes` in order. `verify` checks the IR after each pass, and that a pass
    which reports no change printed the same IR; `dump(stage, func)` sees the IR before the
    pipeline ('ir') and after each pass that changed it."""

    passes: Sequence[Pass]
    verify: bool = False
    dump: Optional[Callable[[str, Func], None]] = None
    disabled: Sequence[str] = ()
    records: List[PassRecord] = field(default_factory=list)

    def run(self, func: Func) -> Func:
        if self.verify:
            verify(func)
        if self.dump:
            self.dump("ir", func)
        required = {p.name for p in required_passes()}
        for index, p in enumerate(self.passes):
            if p.name in self.disabled and p.name not in required:
                continue
            before = print_func(func) if self.verify else None
            start = time.perf_counter()
            func, changed = p.run(func)
            self.records.append(PassRecord(p.name, time.perf_counter() - start, changed))
            if self.verify:
                try:
                    verify(func)
                except AssertionError as e:
                    raise AssertionError(f"IR invalid after pass '{p.name}': {e}") from None
                if not changed and print_func(func) != before:
                    raise AssertionError(f"pass '{p.name}' reported no change but changed "
                                         f"the IR")
            if self.dump and changed:
                self.dump(f"{index + 1:02d}-{p.name}", func)
        return func


def available_passes() -> List[Pass]:
    """Every optional pass by name (for --passes / --disable-pass). Each also runs inside
    control-flow regions (`in_regions`): branches and loop bodies are simplified and fused
    like the function around them."""
    from flowjit.passes import (bucket_allreduce, canonicalize, const_fold, cse, dce,
                                decompose, fusion)
    return [Pass("decompose", in_regions(decompose.run)),
            Pass("canonicalize", in_regions(canonicalize.run)),
            Pass("const-fold", in_regions(const_fold.run)), Pass("cse", in_regions(cse.run)),
            Pass("dce", in_regions(dce.run)), Pass("fusion", in_regions(fusion.run)),
            Pass("bucket-allreduce", bucket_allreduce.run)]


CONTROL_FLOW = (COND, WHILE)


def in_regions(run: PassFn) -> PassFn:
    """`run` on a Func, then on each region of its control-flow instructions (a cond's
    branches, a while's condition and body: closed Funcs of their own), nested ones too.
    Fusion regions are left alone: they are the fusion pass's output."""
    def nested(func: Func) -> Tuple[Func, bool]:
        func, changed = run(func)
        body = []
        for instr in func.body:
            if instr.op in CONTROL_FLOW:
                regions = []
                for region in instr.regions:
                    region, region_changed = nested(region)
                    regions.append(region)
                    changed = changed or region_changed
                if any(new is not old for new, old in zip(regions, instr.regions)):
                    instr = instr.with_regions(regions)
            body.append(instr)
        return (func.replace(body=body), True) if changed else (func, False)
    nested.__name__ = getattr(run, "__name__", "nested")
    return nested


def required_passes() -> List[Pass]:
    """Passes every pipeline starts with: without them the IR cannot run (gradient
    requests have no kernel), so they cannot be disabled."""
    from flowjit.passes import autodiff
    return [Pass("autodiff", in_regions(autodiff.run))]


def default_pipeline() -> List[Pass]:
    """Expand data-movement ops into kernel primitives, simplify to a fixed point (twice is
    enough in practice), then fuse, then clean up; last, fuse the gradients' allreduces into
    buckets placed for overlap (after fusion and DCE: nothing moves them afterwards)."""
    by_name = {p.name: p for p in available_passes()}
    simplify = [by_name[n] for n in ("canonicalize", "const-fold", "cse", "dce")]
    return required_passes() + [by_name["decompose"]] + simplify + simplify + \
        [by_name["fusion"], by_name["dce"], by_name["bucket-allreduce"]]


def pipeline_from_names(names: Sequence[str]) -> List[Pass]:
    by_name = {p.name: p for p in available_passes()}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown pass(es) {unknown}; available: {sorted(by_name)}")
    return required_passes() + [by_name[n] for n in names]
