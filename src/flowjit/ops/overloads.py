"""Python operators on Tensors and Variables (`a + b`, `x[1:]`, `-x`, `a @ b`, ...).

Names follow TF1: `a + b` is named 'add' while `tf.add(a, b)` is named 'Add'.
"""
from __future__ import annotations

from flowjit import errors
from flowjit.graph.core import Tensor
from flowjit.ops import indexing, math
from flowjit.ops.base import convert_operands, convert_to_tensor


def _binary(fn, name, reflected=False):
    def method(self, other):
        x, y = (other, self) if reflected else (self, other)
        try:
            x, y = convert_operands(x, y)
        except errors.DTypeError:
            raise  # a value we understood but cannot use: say why (TF1 raises TypeError)
        except TypeError:
            return NotImplemented  # an unknown type: let it try its reflected operator
        return fn(x, y, name=name)
    return method


def _truediv(x, y, name):
    return math.truediv(x, y, name=name)


BINARY_OPERATORS = {
    "add": (math.add, "add"),
    "sub": (math.subtract, "sub"),
    "mul": (math.multiply, "mul"),
    "truediv": (_truediv, "truediv"),
    "floordiv": (math.floordiv, "floordiv"),
    "mod": (math.floormod, "mod"),
    "pow": (math.pow, "pow"),
    "matmul": (math.matmul, "MatMul"),
    "and": (math.logical_and, "LogicalAnd"),
    "or": (math.logical_or, "LogicalOr"),
    "xor": (math.logical_xor, "LogicalXor"),
}

COMPARISONS = {
    "lt": (math.less, "Less"),
    "le": (math.less_equal, "LessEqual"),
    "gt": (math.greater, "Greater"),
    "ge": (math.greater_equal, "GreaterEqual"),
}


def install(cls) -> None:
    """Gives `cls` (Tensor, Variable) the arithmetic operators; operands convert with
    `_as_graph_element`, so any class providing it works."""
    for op, (fn, name) in BINARY_OPERATORS.items():
        setattr(cls, f"__{op}__", _binary(fn, name))
        setattr(cls, f"__r{op}__", _binary(fn, name, reflected=True))
    for op, (fn, name) in COMPARISONS.items():
        setattr(cls, f"__{op}__", _binary(fn, name))
    cls.__neg__ = lambda self: math.negative(convert_to_tensor(self), name="Neg")
    cls.__abs__ = lambda self: math.abs(convert_to_tensor(self), name="Abs")
    cls.__invert__ = lambda self: math.logical_not(convert_to_tensor(self), name="LogicalNot")
    cls.__pos__ = lambda self: convert_to_tensor(self)
    cls.__getitem__ = lambda self, key: indexing.strided_slice_by_index(convert_to_tensor(self), key)


install(Tensor)
