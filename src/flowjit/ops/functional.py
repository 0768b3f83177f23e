"""Higher-order functions over the leading axis: `tf.map_fn`, `tf.foldl`, `tf.foldr` and
`tf.scan`, built on `tf.while_loop`.

Element i of `elems` is `tf.gather(e, i)`; stacked outputs are written row by row into an
accumulator with `index_update` (an op of its own: `x` with row i replaced, TF1's
TensorArray write). The first element is computed before the loop (its result gives the
accumulator's dtype and shape, which are known only once `fn` has run), so `elems` must not
be empty; the loop runs the rest. Trip counts are the static length of `elems` where it is
known (`maximum_iterations`), else the run-time one, known when the run is compiled: either
way the loops are differentiable.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor, get_default_graph
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import INTS, apply_op, check_dtype, constant, convert_to_tensor
from flowjit.ops.control_flow import while_loop
from flowjit.ops.function_graph import flatten, pack_as, structure_of


# -- index_update: x with row `index` replaced by `value` ---------------------------------------
def _index_update_infer(inputs):
    x, index, value = inputs
    check_dtype(index, INTS, "index")
    if not index.shape.is_compatible_with(TensorShape([])):
        raise ShapeInferenceError(f"index must be a scalar, got shape {index.shape}")
    if value.dtype is not x.dtype:
        raise ShapeInferenceError(f"value has dtype {value.dtype.name}, the tensor "
                                  f"{x.dtype.name}")
    if x.shape.dims is not None and not value.shape.is_compatible_with(x.shape.dims[1:]):
        raise ShapeInferenceError(f"a row of a tensor of shape {x.shape} cannot be "
                                  f"replaced by a value of shape {value.shape}")
    return [TensorSpec(x.dtype, x.shape)]


def _check_index_update(x, index, value):
    if not 0 <= int(index) < x.shape[0]:
        raise errors.IndexOutOfRangeError(f"index {int(index)} is not in [0, {x.shape[0]}) "
                                          f"(updating a row of a tensor of shape "
                                          f"{list(x.shape)})")


def _index_update_kernel(x, index, value):
    _check_index_update(x, index, value)
    out = np.array(x)
    out[int(index)] = value
    return out


register_op("IndexUpdate", "index_update", _index_update_infer, _index_update_kernel,
            check_inputs=_check_index_update)


def index_update(x, index, value, name: Optional[str] = None) -> Tensor:
    """`x` with `x[index]` replaced by `value`."""
    return apply_op("IndexUpdate", [convert_to_tensor(x), convert_to_tensor(index),
                                    convert_to_tensor(value)], name=name,
                    default_name="IndexUpdate")


# -- helpers ------------------------------------------------------------------------------------
class _Elements:
    """The flattened `elems`, their length (static if known, and as a tensor), and
    element i packed as `elems` is."""

    def __init__(self, elems: Any, where: str) -> None:
        from flowjit.ops.array import shape
        from flowjit.ops.indexing import gather
        self.structure = elems
        self.flat = [convert_to_tensor(e) for e in flatten(elems)]
        if not self.flat:
            raise ValueError(f"{where}: elems must hold at least one tensor")
        for e in self.flat:
            if e.shape.dims is not None and len(e.shape.dims) == 0:
                raise errors.ShapeError(f"{where}: elems must have a leading axis, got the "
                                        f"scalar {e.describe()}")
        lengths = {e.shape.dims[0] for e in self.flat if e.shape.dims is not None} - {None}
        if len(lengths) > 1:
            raise errors.ShapeError(f"{where}: all elems must have the same length along "
                                    f"axis 0, got {sorted(lengths)}")
        self.static = lengths.pop() if lengths else None
        if self.static == 0:
            raise errors.ShapeError(f"{where}: elems is empty (flowjit computes the first "
                                    f"element before the loop)")
        self.length = constant(self.static, dtypes.int32) if self.static is not None else \
            shape(self.flat[0], out_type=dtypes.int32)[0]
        self._gather = gather

    def at(self, i) -> Any:
        return pack_as(self.structure, [self._gather(e, i) for e in self.flat])


def _stacked(first: Tensor, n: _Elements, index) -> Tensor:
    """An accumulator for `n.length` rows like `first`, holding `first` at `index`."""
    from flowjit.ops.array import concat, reshape, shape
    from flowjit.ops.creation import zeros
    if n.static is not None and first.shape.is_fully_defined():
        empty = zeros([n.static] + first.shape.as_list(), first.dtype)
    else:
        dims = concat([reshape(n.length, [1]), shape(first, out_type=dtypes.int32)], 0)
        empty = zeros(dims, first.dtype)
    return index_update(empty, index, first)


def _trip_limit(n: _Elements, start: int) -> Optional[int]:
    return None if n.static is None else n.static - start


def _tensors(structure: Any, where: str, what: str) -> List[Tensor]:
    leaves = flatten(structure)
    if not leaves:
        raise ValueError(f"{where}: {what} holds no tensor")
    return [convert_to_tensor(leaf) for leaf in leaves]


# -- map_fn / foldl / foldr / scan ---------------------------------------------------------------
def map_fn(fn: Callable, elems, dtype=None, parallel_iterations=None, back_prop: bool = True,
           swap_memory: bool = False, infer_shape: bool = True, name: Optional[str] = None):
    """`tf.map_fn`: `fn` on each element of `elems` (unstacked along axis 0; nested
    structures too), the results stacked."""
    with get_default_graph().name_scope(name or "map") as scope:
        where = f"tf.map_fn '{scope[:-1]}'"
        n = _Elements(elems, where)
        first_result = fn(n.at(0))
        first = _tensors(first_result, where, "the result of fn")
        _check_dtypes(where, dtype, first)
        accumulators = [_stacked(y, n, 0) for y in first]

        def body(i, accumulators):
            result = fn(n.at(i))
            ys = _same_structure(where, "fn", first_result, result)
            return i + 1, [index_update(a, i, y) for a, y in zip(accumulators, ys)]

        _, stacked = while_loop(lambda i, _: i < n.length, body,
                                [constant(1, dtypes.int32), accumulators],
                                maximum_iterations=_trip_limit(n, 1))
        return pack_as(first_result, stacked)


def foldl(fn: Callable, elems, initializer=None, parallel_iterations=10,
          back_prop: bool = True, swap_memory: bool = False, name: Optional[str] = None):
    """`tf.foldl`: `a = fn(a, x)` over the elements from the first; `a` starts as
    `initializer` (else the first element)."""
    return _fold(fn, elems, initializer, name or "foldl", "tf.foldl", reverse=False)


def foldr(fn: Callable, elems, initializer=None, parallel_iterations=10,
          back_prop: bool = True, swap_memory: bool = False, name: Optional[str] = None):
    """`tf.foldr`: as foldl, from the last element to the first."""
    return _fold(fn, elems, initializer, name or "foldr", "tf.foldr", reverse=True)


def _index(n: _Elements, i, reverse: bool):
    return n.length - 1 - i if reverse else i


def _fold(fn, elems, initializer, name: str, api: str, reverse: bool):
    with get_default_graph().name_scope(name) as scope:
        where = f"{api} '{scope[:-1]}'"
        n = _Elements(elems, where)
        start = 0 if initializer is not None else 1
        a = initializer if initializer is not None else \
            n.at(_index(n, constant(0, dtypes.int32), reverse))
        a = pack_as(a, _tensors(a, where, "the initializer"))

        def body(i, a):
            result = fn(a, n.at(_index(n, i, reverse)))
            return i + 1, pack_as(a, _same_structure(where, "fn", a, result))

        _, result = while_loop(lambda i, _: i < n.length, body,
                               [constant(start, dtypes.int32), a],
                               maximum_iterations=_trip_limit(n, start))
        return result


def scan(fn: Callable, elems, initializer=None, parallel_iterations=10,
         back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True,
         reverse: bool = False, name: Optional[str] = None):
    """`tf.scan`: every intermediate `a = fn(a, x)` of a fold, stacked; without an
    initializer the first element is the first result."""
    with get_default_graph().name_scope(name or "scan") as scope:
        where = f"tf.scan '{scope[:-1]}'"
        n = _Elements(elems, where)
        first_index = _index(n, constant(0, dtypes.int32), reverse)
        if initializer is None:
            a = n.at(first_index)
        else:
            init = pack_as(initializer, _tensors(initializer, where, "the initializer"))
            a = fn(init, n.at(first_index))
            _same_structure(where, "fn", init, a)
        flat = _tensors(a, where, "the result of fn")
        a = pack_as(a, flat)
        accumulators = [_stacked(y, n, first_index) for y in flat]

        def body(i, a, accumulators):
            at = _index(n, i, reverse)
            result = pack_as(a, _same_structure(where, "fn", a, fn(a, n.at(at))))
            rows = flatten(result)
            return i + 1, result, [index_update(s, at, y) for s, y in zip(accumulators, rows)]

        _, _, stacked = while_loop(lambda i, a, s: i < n.length, body,
                                   [constant(1, dtypes.int32), a, accumulators],
                                   maximum_iterations=_trip_limit(n, 1))
        return pack_as(a, stacked)


def _same_structure(where: str, what: str, expected: Any, got: Any) -> List[Tensor]:
    if structure_of(expected) != structure_of(got):
        raise errors.StructureError(f"{where}: {what} must return the structure "
                                    f"{structure_of(expected)}, got {structure_of(got)}")
    values = [convert_to_tensor(v) for v in flatten(got)]
    for want, value in zip(flatten(expected), values):
        want = convert_to_tensor(want)
        if want.dtype is not value.dtype:
            raise errors.DTypeError(f"{where}: {what} returned {value.dtype.name} where "
                                    f"{want.dtype.name} was expected")
    return values


def _check_dtypes(where: str, dtype, results: List[Tensor]) -> None:
    if dtype is None:
        return
    wanted = [dtypes.as_dtype(d) for d in flatten(dtype)]
    got = [t.dtype for t in results]
    if wanted != got:
        raise errors.DTypeError(f"{where}: fn returned dtypes "
                                f"{[d.name for d in got]}, dtype says "
                                f"{[d.name for d in wanted]}")
