"""Gradient bucketing (Horovod's tensor fusion, done once at compile time): the allreduces
of one step become a few allreduces of fused buckets, each started as soon as its last
gradient is computed and waited for just before its first use.

    %g1 = ...                               %g1 = ...
    %g2 = ...                               %f1 = reshape %g1 {shape=(-1,)}
    %r1 = allreduce %g1                     %f2 = reshape %g2 {shape=(-1,)}
    %r2 = allreduce %g2                     %b  = concatenate %f1, %f2 {axis=0}
    ...backward pass of earlier layers...   %h  = allreduce_start %b
    %u1 = ... %r1 ...                       ...backward pass of earlier layers...
                                            %s  = allreduce_wait %h, %b
                                            %r1 = reshape (slice %s) ...; %r2 = ...
                                            %u1 = ... %r1 ...

A bucket holds allreduces of one dtype, reduce op and compression, packed in the order
their operands become ready, up to `config.fusion_threshold` bytes (64 MB; 0 turns the
pass off); one larger gradient is a bucket alone. Allreduces never move across another op
with effects (a tf.Print, a broadcast), so collectives keep their order relative to the
others; among themselves they are reordered by readiness, identically on every rank, since
every rank compiles the same IR with the same pass. Allreduces of a statically unknown shape
those inside control flow, and an allreduce of an allreduce's result are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from flowjit.config import config
from flowjit.ir.builder import Builder
from flowjit.ir.core import Func, Instr, Value, substitute

ALLREDUCE = "allreduce"


@dataclass
class _Bucket:
    members: List[int] = field(default_factory=list)  # body indices of its allreduces
    nbytes: int = 0
    ready: int = -1       # body index after which every operand exists
    first_use: int = 0    # body index of the first instruction reading a result


def run(func: Func, threshold: Optional[int] = None) -> Tuple[Func, bool]:
    threshold = config.fusion_threshold if threshold is None else threshold
    if threshold <= 0:
        return func, False
    buckets = _buckets(func, threshold)
    if not buckets:
        return func, False
    return _rewrite(func, buckets), True


def _bucketable(instr: Instr) -> bool:
    return instr.op == ALLREDUCE and instr.result.type.is_static


def _buckets(func: Func, threshold: int) -> List[_Bucket]:
    defined: Dict[Value, int] = {r: i for i, instr in enumerate(func.body)
                                 for r in instr.results}
    first_use: Dict[Value, int] = {}
    for i, instr in enumerate(func.body):
        for v in instr.operands:
            first_use.setdefault(v, i)
    candidates: List[Tuple[int, int, tuple]] = []  # (ready, index, key)
    barrier = -1  # the last other op with effects: nothing moves above it
    for i, instr in enumerate(func.body):
        source = defined.get(instr.operands[0]) if instr.operands else None
        if _bucketable(instr) and (source is None or func.body[source].op != ALLREDUCE):
            ready = max(barrier, defined.get(instr.operands[0], -1))
            key = (instr.attrs["reduce_op"], instr.attrs["compression"],
                   instr.result.type.dtype.name, barrier)
            candidates.append((ready, i, key))
        elif instr.has_effects:
            barrier = i
    buckets: List[_Bucket] = []
    open_buckets: Dict[tuple, _Bucket] = {}
    for ready, index, key in sorted(candidates):
        result = func.body[index].result
        nbytes = result.type.num_elements * result.type.dtype.np_dtype.itemsize
        bucket = open_buckets.get(key)
        # a bucket closes when full, or when this gradient is ready only after a result of
        # the bucket is needed (it may even be computed from one)
        if bucket is None or bucket.nbytes + nbytes > threshold or ready >= bucket.first_use:
            bucket = open_buckets[key] = _Bucket(first_use=len(func.body))
            buckets.append(bucket)
        bucket.members.append(index)
        bucket.nbytes += nbytes
        bucket.ready = max(bucket.ready, ready)
        bucket.first_use = min(bucket.first_use, first_use.get(result, len(func.body)))
    return buckets


def _rewrite(func: Func, buckets: List[_Bucket]) -> Func:
    after: Dict[int, List[Instr]] = {}    # body index -> instructions emitted after it
    before: Dict[int, List[Instr]] = {}   # body index -> instructions emitted before it
    replaced: Dict[Value, Value] = {}
    removed = {i for bucket in buckets for i in bucket.members}
    for bucket in buckets:
        members = [func.body[i] for i in bucket.members]
        first = members[0]
        start = Builder(first.loc)
        names = ", ".join(m.attrs["tensor"] for m in members)
        sent = _fuse(start, [m.operands[0] for m in members])
        handle = start.allreduce_start(sent, reduce_op=first.attrs["reduce_op"],
                                       compression=first.attrs["compression"],
                                       tensor=names if len(members) == 1 else
                                       f"the bucket of {names}")
        finish = Builder(first.loc)
        summed = finish.allreduce_wait(handle, sent)
        for member, value in zip(members, _unfuse(finish, summed, members)):
            replaced[member.result] = value
        after.setdefault(bucket.ready, []).extend(start.instrs)
        before.setdefault(bucket.first_use, []).extend(finish.instrs)
    body: List[Instr] = list(after.get(-1, []))
    for i, instr in enumerate(func.body + [None]):  # (None: waits for results only fetched)
        body.extend(_reading(before.get(i, []), replaced))
        if instr is None:
            break
        if i not in removed:
            body.append(_reading([instr], replaced)[0])
        body.extend(_reading(after.get(i, []), replaced))
    results = [r.__class__(substitute([r.value], replaced)[0], r.role, r.key)
               for r in func.results]
    return func.replace(body=body, results=results)


def _reading(instrs: List[Instr], replaced: Dict[Value, Value]) -> List[Instr]:
    out = []
    for instr in instrs:
        operands = substitute(instr.operands, replaced)
        out.append(instr if operands == instr.operands else instr.with_operands(operands))
    return out


def _fuse(b: Builder, values: List[Value]) -> Value:
    """One flat buffer of `values` (a single value is sent as it is)."""
    if len(values) == 1:
        return values[0]
    flat = [b.reshape(v, shape=(-1,)) for v in values]
    return b.concatenate(*flat, axis=0)


def _unfuse(b: Builder, summed: Value, members: List[Instr]) -> List[Value]:
    if len(members) == 1:
        return [summed]
    out, offset = [], 0
    for member in members:
        type_ = member.result.type
        size = type_.num_elements
        part = b.slice(summed, begin=(offset,), size=(size,))
        out.append(b.reshape(part, shape=tuple(type_.shape)))
        offset += size
    return out
