"""Static shapes with unknown dimensions (TF1's `TensorShape`).

A dimension is an `int` or `None` (unknown); a shape of unknown rank has `dims is None`.
Shape rules of the ops use `broadcast_shapes` and `merge` here, so unknown dims flow through
the graph exactly as in TF1 (`[None, 784] @ [784, 10] -> [None, 10]`).
"""
from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Sequence, Union

Dim = Optional[int]


class TensorShape:
    __slots__ = ("_dims",)

    def __init__(self, dims: Union[None, "TensorShape", Iterable[Dim], int] = None) -> None:
        if isinstance(dims, TensorShape):
            self._dims = dims._dims
        elif dims is None:
            self._dims = None
        elif isinstance(dims, int):
            self._dims = (_as_dim(dims),)
        else:
            self._dims = tuple(_as_dim(d) for d in dims)

    # -- TF1 API -------------------------------------------------------------------------
    @property
    def dims(self) -> Optional[tuple]:
        return self._dims

    @property
    def ndims(self) -> Optional[int]:
        return None if self._dims is None else len(self._dims)

    rank = ndims

    def as_list(self) -> list:
        if self._dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self._dims)

    def as_tuple(self) -> Optional[tuple]:
        return self._dims

    def is_fully_defined(self) -> bool:
        return self._dims is not None and all(d is not None for d in self._dims)

    def num_elements(self) -> Optional[int]:
        if not self.is_fully_defined():
            return None
        n = 1
        for d in self._dims:
            n *= d
        return n

    def is_compatible_with(self, other: "ShapeLike") -> bool:
        other = as_shape(other)
        if self._dims is None or other._dims is None:
            return True
        if len(self._dims) != len(other._dims):
            return False
        return all(a is None or b is None or a == b for a, b in zip(self._dims, other._dims))

    def merge_with(self, other: "ShapeLike") -> "TensorShape":
        other = as_shape(other)
        if not self.is_compatible_with(other):
            raise ValueError(f"Shapes {self} and {other} are not compatible")
        if self._dims is None:
            return other
        if other._dims is None:
            return self
        return TensorShape(a if a is not None else b for a, b in zip(self._dims, other._dims))

    def concatenate(self, other: "ShapeLike") -> "TensorShape":
        other = as_shape(other)
        if self._dims is None or other._dims is None:
            return TensorShape(None)
        return TensorShape(self._dims + other._dims)

    def with_rank(self, rank: int) -> "TensorShape":
        if self._dims is None:
            return TensorShape([None] * rank)
        if len(self._dims) != rank:
            raise ValueError(f"Shape {self} must have rank {rank}")
        return self

    def assert_is_compatible_with(self, other: "ShapeLike") -> None:
        if not self.is_compatible_with(other):
            raise ValueError(f"Shapes {self} and {as_shape(other)} are incompatible")

    # -- Python protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        if self._dims is None:
            raise ValueError("Cannot take the length of a shape with unknown rank.")
        return len(self._dims)

    def __iter__(self) -> Iterator[Dim]:
        if self._dims is None:
            raise ValueError("Cannot iterate over a shape with unknown rank.")
        return iter(self._dims)

    def __getitem__(self, key):
        if self._dims is None:
            return TensorShape(None) if isinstance(key, slice) else None
        if isinstance(key, slice):
            return TensorShape(self._dims[key])
        return self._dims[key]

    def __eq__(self, other) -> bool:
        try:
            other = as_shape(other)
        except (TypeError, ValueError):
            return NotImplemented
        return self._dims == other._dims

    def __hash__(self) -> int:
        return hash(self._dims)

    def __bool__(self) -> bool:
        return self._dims is not None

    def __repr__(self) -> str:
        return f"TensorShape({None if self._dims is None else list(self._dims)})"

    def __str__(self) -> str:
        if self._dims is None:
            return "<unknown>"
        inner = ", ".join("?" if d is None else str(d) for d in self._dims)
        return f"({inner},)" if len(self._dims) == 1 else f"({inner})"


ShapeLike = Union[TensorShape, Sequence[Dim], None, int]


def _as_dim(d) -> Dim:
    if d is None:
        return None
    if hasattr(d, "value") and not isinstance(d, int):  # Dimension-like
        d = d.value
        if d is None:
            return None
    try:
        i = int(d)
    except (TypeError, ValueError):
        raise TypeError(f"Dimension value must be an int or None, got {d!r}") from None
    if i != d or i < -1:
        raise ValueError(f"Dimension {d!r} must be a non-negative integer or None")
    return None if i == -1 else i


def as_shape(shape: ShapeLike) -> TensorShape:
    return shape if isinstance(shape, TensorShape) else TensorShape(shape)


def unknown_shape() -> TensorShape:
    return TensorShape(None)


def scalar() -> TensorShape:
    return TensorShape(())


def broadcast_shapes(a: TensorShape, b: TensorShape) -> Optional[TensorShape]:
    """numpy broadcasting on static shapes; None when they cannot broadcast.

    An unknown dim against 1 stays unknown; an unknown dim against n > 1 becomes n (the run
    will fail if the fed value disagrees, which the interpreter reports by name).
    """
    if a.dims is None or b.dims is None:
        return TensorShape(None)
    rank = max(len(a.dims), len(b.dims))
    da = (1,) * (rank - len(a.dims)) + a.dims
    db = (1,) * (rank - len(b.dims)) + b.dims
    out = []
    for x, y in zip(da, db):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None:
            out.append(y)
        elif y is None or x == y:
            out.append(x)
        else:
            return None
    return TensorShape(out)


# -- index arithmetic on static shapes (layout ops' affine maps, kernel schedules) ------------
def row_major_strides(shape) -> List[int]:
    """Element strides of a dense row-major array of `shape`."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


def broadcast_strides(shape, space) -> List[int]:
    """Element strides of a row-major array of `shape` read over the index `space` it is
    broadcast to (numpy rules): 0 along broadcast dimensions."""
    strides, step = [0] * len(space), 1
    for d in range(1, len(shape) + 1):
        if shape[-d] != 1:
            strides[-d] = step
        step *= shape[-d]
    return strides
