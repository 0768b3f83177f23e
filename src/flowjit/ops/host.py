"""Ops that run on the host, with effects: Python callbacks (`tf.py_func`,
`tf.numpy_function`), printing (`tf.Print`, `tf.print`), numeric checks
(`tf.check_numerics`, `tf.add_check_numerics_ops`) and assertions (`tf.Assert`,
`tf.assert_equal`, `tf.assert_positive`, `tf.assert_rank`).

They are ordinary ops of the op table whose numpy kernels do the work: every backend runs
them in the host part of an executable (no native code is generated for them), in the order
the run's plan gives. The ones with effects are `has_effects` ops: DCE never removes them,
CSE never merges them, and constant folding never runs them early.

A callback is not an attribute value (the IR is data: it prints and parses): the op holds a
token (`"pyfunc_3"`) naming an entry of `_REGISTRY`, as TF1's `FuncRegistry` does.
"""
from __future__ import annotations

import itertools
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, get_default_graph
from flowjit.graph.registry import (ShapeInferenceError, TensorSpec, register_gradient,
                                    register_op)
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops.base import apply_op, convert_to_tensor, graph_for, is_tensor_like

# token -> Python function (py_func), or per-op state (how often a tf.Print printed).
_REGISTRY: Dict[str, Callable] = {}
_PRINT_COUNTS: Dict[str, int] = {}
_tokens = itertools.count()


def _new_token(kind: str) -> str:
    return f"{kind}_{next(_tokens)}"


# -- py_func / numpy_function ------------------------------------------------------------------
def _py_func_infer(inputs, *, token, Tout, shapes):
    if len(shapes) != len(Tout):
        raise ShapeInferenceError(f"py_func has {len(Tout)} output types but {len(shapes)} "
                                  f"output shapes")
    return [TensorSpec(t, as_shape(s)) for t, s in zip(Tout, shapes)]


def _py_func_kernel(*inputs, token, Tout, shapes):
    func = _REGISTRY.get(token)
    if func is None:
        raise errors.FailedPreconditionError(f"the Python function of py_func {token!r} is "
                                             f"not registered in this process")
    # The function may keep what it is given, and what it returns is its own: inputs that
    # flowjit still owns (read-only: variable values, buffers the next run reuses) are
    # passed as copies, and results are copied (runtime/buffers.py).
    inputs = [x if getattr(x, "flags", None) is None or x.flags.writeable else np.array(x)
              for x in inputs]
    try:
        result = func(*inputs)
    except Exception as e:  # the user's error, with its type, in the op's error
        kind = errors.InvalidArgumentError if isinstance(e, (ValueError, TypeError,
                                                             IndexError)) else \
            errors.UnknownError
        raise kind(f"{type(e).__name__}: {e} (raised by the Python function "
                   f"{getattr(func, '__name__', func)!r})") from e
    if isinstance(result, (list, tuple)) and (len(Tout) != 1 or len(result) == 1):
        results = list(result)  # one value per output (TF1's convention)
    else:
        results = [result]
    if len(results) != len(Tout):
        raise errors.InvalidArgumentError(f"the Python function returned {len(results)} "
                                          f"values where Tout has {len(Tout)}")
    outputs = []
    for i, (value, dtype, shape) in enumerate(zip(results, Tout, shapes)):
        array = np.array(value) if dtype is not dtypes.string else \
            _strings(value)
        if array.dtype != dtype.np_dtype:
            raise errors.InvalidArgumentError(
                f"{i}-th value returned by the Python function is {_dtype_name(array)}, but "
                f"Tout expects {dtype.name}")
        if not as_shape(shape).is_compatible_with(array.shape):
            raise errors.InvalidArgumentError(
                f"{i}-th value returned by the Python function has shape "
                f"{list(array.shape)}, but the tensor's shape is {as_shape(shape)}")
        outputs.append(array)
    return tuple(outputs)


def _strings(value) -> np.ndarray:
    from flowjit.ops.strings import to_string_array
    return to_string_array(value)


def _dtype_name(array: np.ndarray) -> str:
    try:
        return dtypes.as_dtype(array.dtype).name
    except TypeError:
        return str(array.dtype)


# Stateful py_func (TF1's default) has effects: it runs whenever its run needs it. A
# stateless one may be merged or dropped like any pure op (never folded at build time).
register_op("PyFunc", "py_func", _py_func_infer, _py_func_kernel, has_effects=True)
register_op("PyFuncStateless", "py_func_stateless", _py_func_infer, _py_func_kernel,
            stateful=True)


def py_func(func: Callable, inp: Sequence[Any], Tout, stateful: bool = True,
            name: Optional[str] = None):
    """`tf.py_func`: calls `func` on the numpy values of `inp` when the graph runs. Outputs
    have the dtypes `Tout` and unknown shapes (give them with `set_shape`); a result of
    another dtype or shape is an error naming the op, as in TF1."""
    single = not isinstance(Tout, (list, tuple))
    types = tuple(dtypes.as_dtype(t) for t in ([Tout] if single else Tout))
    inputs = [convert_to_tensor(x) for x in inp]
    token = _new_token("pyfunc")
    _REGISTRY[token] = func
    outputs = apply_op("PyFunc" if stateful else "PyFuncStateless", inputs,
                       {"token": token, "Tout": types,
                        "shapes": tuple(TensorShape(None) for _ in types)},
                       name=name, default_name="PyFunc")
    if isinstance(outputs, Operation):
        return [] if not single else outputs
    if single:
        return outputs
    return list(outputs) if isinstance(outputs, tuple) else [outputs]


def numpy_function(func: Callable, inp: Sequence[Any], Tout, name: Optional[str] = None):
    """`tf.numpy_function`: py_func, stateful."""
    return py_func(func, inp, Tout, stateful=True, name=name)


# -- formatting values for Print/print/Assert ----------------------------------------------------
def _element(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def summary(array: np.ndarray, first: int) -> str:
    """TF1's `Tensor::SummarizeValue`: the first `first` elements (all if negative), nested
    in brackets by dimension, '...' where some are left out."""
    array = np.asarray(array)
    if array.ndim == 0:
        return _element(array.item())
    flat = array.reshape(-1)
    shown = flat if first < 0 else flat[:first]
    items = [_element(v) for v in shown.tolist()]
    if len(shown) < flat.size:
        items.append("...")
    return "[" + " ".join(items) + "]"


def format_numpy_like(array: np.ndarray, edge: int) -> str:
    """tf.print's form: numpy's, `edge` items at each end of long dimensions."""
    array = np.asarray(array)
    if array.dtype == object:
        array = np.vectorize(_element, otypes=[object])(array) if array.size else array
        if array.ndim == 0:
            return str(array.item())
    if array.ndim == 0:
        return _element(array.item())
    return np.array2string(array, separator=" ", threshold=2 * edge if edge >= 0 else
                           sys.maxsize, edgeitems=max(edge, 1),
                           formatter={"object": str, "bool": lambda b: str(bool(b)).lower()})


def _render(template: Sequence[Any], values: List[np.ndarray], fmt) -> List[str]:
    """Template entries are text, or None where the next value goes."""
    parts, it = [], iter(values)
    for piece in template:
        parts.append(fmt(next(it)) if piece is None else piece)
    return parts


def _static_text(items: Sequence[Any], first: Optional[int]) -> str:
    """The text an assertion about build-time constants fails with."""
    parts = []
    for item in items:
        if item is None or (isinstance(item, (str, bytes)) and not item):
            continue
        if is_tensor_like(item):
            tensor = convert_to_tensor(item)
            parts.append(tensor.name if tensor._value is None else
                         summary(tensor._value, 3 if first is None else first))
        else:
            parts.append(item.decode() if isinstance(item, bytes) else str(item))
    return " ".join(parts)


def _template(items: Sequence[Any]):
    """(template, tensors) of a list mixing tensors and Python values (printed as text)."""
    template, tensors = [], []
    for item in items:
        if item is None or (isinstance(item, (str, bytes)) and not item):
            continue
        if is_tensor_like(item):
            tensor = convert_to_tensor(item)
            if tensor._value is not None and tensor.dtype is dtypes.string and \
                    tensor._value.ndim == 0:
                template.append(_element(tensor._value.item()))
                continue
            template.append(None)
            tensors.append(tensor)
        else:
            template.append(item.decode() if isinstance(item, bytes) else str(item))
    return tuple(template), tensors


# -- tf.Print ---------------------------------------------------------------------------------
def _print_infer(inputs, **_attrs):
    return [TensorSpec(inputs[0].dtype, inputs[0].shape)]


def _print_kernel(x, *data, message, first_n, summarize: int, token):
    count = _PRINT_COUNTS.get(token, 0)
    if first_n < 0 or count < first_n:
        _PRINT_COUNTS[token] = count + 1
        text = message + "".join(f"[{summary(d, summarize)}]" if np.asarray(d).ndim == 0
                                 else summary(d, summarize) for d in data)
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    return x


register_op("Print", "print", _print_infer, _print_kernel, has_effects=True)


def Print(input_, data, message=None, first_n=None, summarize=None, name=None):
    """`tf.Print`: `input_`, printing `message` and the values of `data` to stderr each time
    it runs (only the first `first_n` times if given; `summarize` values of each)."""
    x = convert_to_tensor(input_)
    tensors = [convert_to_tensor(d) for d in (data or [])]
    attrs = {"message": message or "", "first_n": -1 if first_n is None else int(first_n),
             "summarize": 3 if summarize is None else int(summarize),
             "token": _new_token("print")}
    return apply_op("Print", [x] + tensors, attrs, name=name, default_name="Print")


# -- tf.print ---------------------------------------------------------------------------------
def _print_v2_kernel(*values, template, sep, end, stream, summarize):
    text = sep.join(_render(template, list(values),
                            lambda v: format_numpy_like(v, summarize))) + end
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.write(text)
    target.flush()
    return ()


register_op("PrintV2", "print_v2", lambda inputs, **attrs: [], _print_v2_kernel,
            has_effects=True)


def print_v2(*inputs, **kwargs) -> Operation:
    """`tf.print(*inputs, output_stream=sys.stderr, summarize=3, sep=' ', end='\\n')`: an op
    that prints tensors (numpy's layout, `summarize` items at each end) and Python values;
    run it, or make other ops depend on it with `tf.control_dependencies`."""
    stream = kwargs.pop("output_stream", sys.stderr)
    summarize = kwargs.pop("summarize", 3)
    sep = kwargs.pop("sep", " ")
    end = kwargs.pop("end", "\n")
    name = kwargs.pop("name", None)
    if kwargs:
        raise TypeError(f"tf.print got unexpected keyword arguments {sorted(kwargs)}")
    if stream in (sys.stdout, "stdout"):
        stream_name = "stdout"
    elif stream in (sys.stderr, "stderr"):
        stream_name = "stderr"
    else:
        raise errors.UnimplementedError(f"tf.print to {stream!r}: only sys.stdout and "
                                        f"sys.stderr are supported")
    template, tensors = _template(inputs)
    attrs = {"template": template, "sep": sep, "end": end, "stream": stream_name,
             "summarize": -1 if summarize is None else int(summarize)}
    return graph_for(tensors).create_op("PrintV2", tensors, attrs, name=name,
                                        default_name="PrintV2")


# -- check_numerics -----------------------------------------------------------------------------
def _check_numerics_infer(inputs, *, message, tensor):
    (x,) = inputs
    if not x.dtype.is_floating:
        raise ShapeInferenceError(f"check_numerics needs a floating point tensor, got dtype "
                                  f"{x.dtype.name}")
    return [TensorSpec(x.dtype, x.shape)]


def _check_numerics_kernel(x, *, message, tensor):
    nan, inf = bool(np.isnan(x).any()), bool(np.isinf(x).any())
    if nan or inf:
        what = "NaN and Inf" if nan and inf else "NaN" if nan else "Inf"
        raise errors.InvalidArgumentError(f"{message} : Tensor had {what} values (tensor "
                                          f"{tensor})")
    return x


register_op("CheckNumerics", "check_numerics", _check_numerics_infer, _check_numerics_kernel,
            has_effects=True)


def check_numerics(tensor, message, name=None):
    """`tf.check_numerics`: `tensor`, or, when it holds a NaN or an infinity, an
    InvalidArgumentError naming the op that produced it."""
    x = convert_to_tensor(tensor)
    return apply_op("CheckNumerics", [x], {"message": str(message),
                                            "tensor": f"{x.describe()}, produced by op "
                                                      f"'{x.op.name}' ({x.op.type})"},
                    name=name, default_name="CheckNumerics")


def add_check_numerics_ops() -> Operation:
    """`tf.add_check_numerics_ops`: a check_numerics for every floating point tensor of the
    default graph, grouped in one op to run with the training step."""
    from flowjit.ops.state import group
    graph = get_default_graph()
    checks = []
    for op in graph.get_operations():
        if op.type in ("CheckNumerics", "Placeholder"):  # (feeds are checked where used)
            continue
        for output in op.outputs:
            if output.dtype.is_floating:
                with graph.control_dependencies(None):
                    checks.append(check_numerics(output, f"{op.name}:{output.value_index}"))
    return group(*checks, name="CheckNumerics")


# -- assertions ------------------------------------------------------------------------------
def _assert_infer(inputs, *, template, summarize):
    if inputs[0].dtype is not dtypes.bool_:
        raise ShapeInferenceError(f"the condition of an Assert must be bool, got dtype "
                                  f"{inputs[0].dtype.name}")
    return []


def _assert_kernel(condition, *data, template, summarize):
    if not np.all(condition):
        text = " ".join(_render(template, list(data),
                                lambda v: summary(v, summarize)))
        raise errors.InvalidArgumentError(f"assertion failed: {text}")
    return ()


register_op("Assert", "assert", _assert_infer, _assert_kernel, has_effects=True)


def Assert(condition, data, summarize=None, name=None) -> Operation:
    """`tf.Assert`: an op that fails its run with InvalidArgumentError when `condition`
    (a bool tensor) is not all true, printing `data` (tensors and Python values)."""
    cond = convert_to_tensor(condition)
    if cond._value is not None and not np.all(cond._value):  # TF1 fails the build here
        raise errors.InvalidArgumentError(f"assertion failed: {_static_text(data, summarize)}")
    template, tensors = _template(data)
    attrs = {"template": template, "summarize": 3 if summarize is None else int(summarize)}
    return graph_for([cond]).create_op("Assert", [cond] + tensors, attrs, name=name,
                                default_name="Assert")


def assert_equal(x, y, data=None, summarize=None, message=None, name=None) -> Operation:
    """`tf.assert_equal`: fails the run (or the build, if both are constants) unless
    x == y elementwise."""
    from flowjit.ops.math import equal, reduce_all
    from flowjit.ops.base import convert_operands
    from flowjit.ops.state import no_op
    x, y = convert_operands(x, y)
    with get_default_graph().name_scope(name or "assert_equal"):
        if data is None:
            data = [message, "Condition x == y did not hold element-wise:",
                    f"x (name = {x.name}) =", x, f"y (name = {y.name}) =", y]
        if x._value is not None and y._value is not None:
            if not np.all(x._value == y._value):
                raise errors.InvalidArgumentError(
                    f"assertion failed: {_static_text(data, summarize)}")
            return no_op()
        return Assert(reduce_all(equal(x, y)), data, summarize)


def assert_positive(x, data=None, summarize=None, message=None, name=None) -> Operation:
    """`tf.assert_positive`: fails the run unless every element of x is > 0."""
    from flowjit.ops.math import less, reduce_all
    from flowjit.ops.state import no_op
    x = convert_to_tensor(x)
    with get_default_graph().name_scope(name or "assert_positive"):
        if data is None:
            data = [message, "Condition x > 0 did not hold element-wise:",
                    f"x (name = {x.name}) =", x]
        if x._value is not None:
            if not np.all(x._value > 0):
                raise errors.InvalidArgumentError(
                    f"assertion failed: {_static_text(data, summarize)}")
            return no_op()
        return Assert(reduce_all(less(np.zeros((), x.dtype.np_dtype), x)), data, summarize)


def assert_rank(x, rank, data=None, summarize=None, message=None, name=None) -> Operation:
    """`tf.assert_rank`: a ValueError when the graph is built if x's static rank is known
    and differs (as TF1); else an op that fails the run with InvalidArgumentError."""
    from flowjit.ops.array import rank as rank_of
    from flowjit.ops.math import equal
    from flowjit.ops.state import no_op
    x = convert_to_tensor(x)
    want = int(rank)
    with get_default_graph().name_scope(name or "assert_rank"):
        if x.shape.ndims is not None:
            if x.shape.ndims != want:
                raise errors.ShapeError(f"{message or ''} Tensor {x.describe()} must have "
                                        f"rank {want}. Received rank {x.shape.ndims}, shape "
                                        f"{x.shape}".strip())
            return no_op()
        if data is None:
            data = [message, f"Tensor {x.name} must have rank {want}. Received rank",
                    rank_of(x)]
        return Assert(equal(rank_of(x), want), data, summarize)


# -- gradients --------------------------------------------------------------------------------
@register_gradient("Print")
def _print_grad(b, instr, grads):
    return [grads[0]] + [None] * (len(instr.operands) - 1)


@register_gradient("CheckNumerics")
def _check_numerics_grad(b, instr, grads):
    """The gradient is checked too, as in TF1."""
    return [b.check_numerics(grads[0], message="Not a number (NaN) or infinity (Inf) values "
                             "detected in gradient. " + instr.attrs["message"],
                             tensor="the gradient of " + instr.attrs["tensor"])]
