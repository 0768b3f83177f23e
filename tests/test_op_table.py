"""The whole op table against the CPU target: every op whose codegen role gives it a kernel,
in every dtype its shape rule accepts and the CPU target claims, compiled alone (no fusion,
so each emitter is checked on its own) and compared with the numpy interpreter. Shapes have
a vector body and a remainder (37 columns), and parallel shares where the kernel splits."""
from __future__ import annotations

import zlib
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest

import flowjit  # noqa: F401 - registers every op
from flowjit import dtypes
from flowjit.codegen import kernels, scalar
from flowjit.codegen.schedule import kernel_kind, schedule
from flowjit.codegen.target import cpu_target
from flowjit.graph import registry
from flowjit.graph.registry import OP_DEFS, DTypeInferenceError, ShapeInferenceError
from flowjit.interp.evaluate import evaluate
from flowjit.ir.builder import Builder
from flowjit.ir.core import FEED, FETCH, Func, Param, Result, TensorType, Value
from flowjit.runtime import cpu

DTYPES = [d for d in (dtypes.float16, dtypes.float32, dtypes.float64, dtypes.int8,
                      dtypes.int16, dtypes.int32, dtypes.int64, dtypes.uint8, dtypes.bool_)
          if scalar.supported_dtype(d)]
ROW, COLS = 6, 37

# For each op with a structural role: (operand types from the dtype, attrs).
Case = Tuple[List[TensorType], Dict]


def _cases(mnemonic: str, role: str, dtype: dtypes.DType) -> List[Case]:
    t = lambda *shape: TensorType(dtype, shape)  # noqa: E731
    i32 = lambda *shape: TensorType(dtypes.int32, shape)  # noqa: E731
    if role == registry.ELEMENTWISE:
        arity = {"select": 3}.get(mnemonic)
        if mnemonic == "select":
            return [([TensorType(dtypes.bool_, (ROW, COLS)), t(ROW, COLS), t(1, COLS)], {})]
        if mnemonic == "convert":
            return [([t(ROW, COLS)], {"dtype": target}) for target in DTYPES]
        return [([t(ROW, COLS)] * n, {}) for n in ((arity,) if arity else (1, 2))] + \
            [([t(ROW, COLS), t(COLS)], {})]  # a broadcast operand
    if role == registry.REDUCTION:
        return [([t(ROW, 4, COLS)], {"axis": axis, "keepdims": keep})
                for axis in (None, (0,), (1,), (2,), (0, 2)) for keep in (False, True)]
    if role == registry.CONTRACTION:
        return [([t(33, 29), t(29, 41)], {"transpose_a": False, "transpose_b": False}),
                ([t(29, 33), t(41, 29)], {"transpose_a": True, "transpose_b": True})]
    if role == registry.CONVOLUTION:
        return [([t(2, 9, 11, 3), t(3, 3, 3, 5)], {"padding": "SAME", "strides": (1, 2, 1, 1)}),
                ([t(2, 9, 11, 3), t(2, 3, 3, 4)], {"padding": "VALID",
                                                   "dilations": (1, 2, 1, 1)})]
    if role == registry.ROWWISE:
        if mnemonic in ("softmax", "log_softmax"):
            return [([t(ROW, COLS)], {"axis": -1})]
        if mnemonic == "softmax_xent":
            return [([t(ROW, COLS), t(ROW, COLS)], {})]
        return [([t(ROW, COLS), i32(ROW)], {})]
    if role == registry.LAYOUT:
        return {
            "transpose": [([t(ROW, 4, COLS)], {"perm": (2, 0, 1)})],
            "slice": [([t(ROW, COLS)], {"begin": (1, 3), "size": (4, 30)})],
            "strided_slice": [([t(ROW, COLS)], {"spec": (("slice", 1, None, 2),
                                                         ("slice", None, None, -3))})],
            "broadcast_to": [([t(1, COLS)], {"shape": (ROW, COLS)})],
        }[mnemonic]
    if role == registry.GATHER:
        return [([t(ROW, COLS), i32(9)], {"axis": 0}), ([t(ROW, COLS), i32(3, 2)], {"axis": 1})]
    if role == registry.CONCAT:
        return [([t(ROW, 5), t(ROW, COLS), t(ROW, 1)], {"axis": 1})]
    return []


def _value(rng: np.random.Generator, type_: TensorType, mnemonic: str, index: int
           ) -> np.ndarray:
    shape, np_dtype = type_.shape, type_.dtype.np_dtype
    if type_.dtype.is_bool:
        return rng.random(shape) < 0.5
    if type_.dtype.is_integer:
        if mnemonic in ("gather", "sparse_softmax_xent") and index == 1:
            return rng.integers(0, 3, shape).astype(np_dtype)  # (valid indices, labels)
        return rng.integers(1, 6, shape).astype(np_dtype)  # nonzero: divisors, exponents
    if mnemonic == "softmax_xent" and index == 1:
        return rng.dirichlet(np.ones(shape[-1]), shape[0]).astype(np_dtype)
    if mnemonic == "reduce_prod":  # near 1: a product in another order must not overflow
        return (rng.uniform(0.7, 1.3, shape) * rng.choice([-1, 1], shape)).astype(np_dtype)
    return (rng.standard_normal(shape) * 2).astype(np_dtype)


def _func(mnemonic: str, types: Sequence[TensorType], attrs: Dict) -> Func:
    params = [Param(Value(ty, f"x{i}"), FEED, f"x{i}:0") for i, ty in enumerate(types)]
    b = Builder()
    results = b.emit(mnemonic, [p.value for p in params], **attrs)
    return Func("op", params, b.instrs, [Result(r, FETCH, f"r{i}") for i, r in
                                            enumerate(results)])


def _claimed():
    """(mnemonic, dtype name, case index, operand types, attrs) of every claimed kernel."""
    claimed = []
    for op_def in sorted(OP_DEFS.values(), key=lambda d: d.mnemonic):
        if kernels.TARGET not in op_def.emitters:
            continue
        for dtype in DTYPES:
            for n, (types, attrs) in enumerate(_cases(op_def.mnemonic, op_def.role, dtype)):
                try:
                    func = _func(op_def.mnemonic, types, attrs)
                except (DTypeInferenceError, ShapeInferenceError, TypeError, ValueError):
                    continue  # the op does not take this dtype
                instr = func.body[0]
                if kernel_kind(instr) is not None:
                    claimed.append((op_def.mnemonic, dtype.name, n, types, attrs))
    return claimed


CLAIMED = _claimed()


def test_every_op_with_a_kernel_role_is_checked():
    """The table walk cannot silently skip an op: each op the CPU has an emitter for is
    claimed for at least one dtype (FloorDiv and FloorMod lack a scalar emitter)."""
    with_emitter = {d.mnemonic for d in OP_DEFS.values() if kernels.TARGET in d.emitters}
    unchecked = with_emitter - {c[0] for c in CLAIMED} - {"floordiv", "mod"}
    assert not unchecked, unchecked
    assert len(CLAIMED) > 300


@pytest.mark.parametrize("mnemonic,dtype,case,types,attrs", CLAIMED,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CLAIMED])
def test_compiled_kernel_matches_the_interpreter(mnemonic, dtype, case, types, attrs):
    func = _func(mnemonic, types, attrs)
    assert schedule(func.body[0], cpu_target()) is not None
    rng = np.random.default_rng(zlib.crc32(f"{mnemonic} {dtype} {case}".encode()))
    inputs = [_value(rng, ty, mnemonic, i) for i, ty in enumerate(types)]
    with np.errstate(all="ignore"):
        try:
            expected = evaluate(func, inputs)
        except (ValueError, ArithmeticError, OverflowError):
            pytest.skip("numpy refuses these values")  # e.g. integer overflow in pow
    run, stats = cpu.build(func)
    assert stats["native"] == 1 and stats["numpy"] == 0, stats
    got = run(inputs)
    for want, have in zip(expected, got):
        want, have = np.asarray(want), np.asarray(have)
        assert have.shape == want.shape and have.dtype == want.dtype
        if want.dtype.kind == "f":
            tol = {2: 2e-3, 4: 2e-5, 8: 1e-12}[want.dtype.itemsize]
            np.testing.assert_allclose(have, want, rtol=tol, atol=tol, equal_nan=True)
        else:
            np.testing.assert_array_equal(have, want)
