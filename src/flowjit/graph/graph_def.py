"""A flowjit Graph as TensorFlow's `GraphDef` protobuf, and back.

Each op becomes a `NodeDef`: its scoped name, its op type (flowjit's op types are
TensorFlow's: `MatMul`, `VariableV2`, ...), its inputs (`x:0` written `x`, as TensorFlow does,
control inputs as `^name`) and its attributes as `AttrValue`s:

    bool -> b     int -> i     float -> f     str -> s     DType -> type
    TensorShape -> shape       numpy array -> tensor       None -> (no value set)
    tuple/list of one of those kinds -> list (read back as a tuple)

A float that float32 cannot hold exactly, or a value of no kind above (a nested list), is
kept as the string `flowjit-attr:<IR attribute text>`, so that flowjit reads back exactly
what it wrote. Every node also gets `_output_shapes` (TensorBoard shows them on the graph).

Reading (`import_graph_def`) recreates every op with `Graph.create_op`, so shapes are
re-derived by flowjit's own rules. Attributes the flowjit op does not take (TensorFlow's `T`,
`container`, `use_locking`, ...) are dropped, as are `_`-prefixed ones; nodes whose op type
flowjit does not have (TensorFlow's `SaveV2`, `RestoreV2`, ...) are skipped with everything
that needs them, and listed in the result.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Graph, Operation
from flowjit.graph.registry import OP_DEFS
from flowjit.graph.shape import TensorShape
from flowjit.io.protos import tensorflow_proto

_FALLBACK_PREFIX = "flowjit-attr:"
GRAPH_PRODUCER = 27  # the GraphDef version TensorFlow 1.15 wrote; readers accept it
# Op types newer TensorFlow writes for ops flowjit has under their TF1 names.
TF_OP_ALIASES = {"AddV2": "Add"}


# -- flowjit -> GraphDef ----------------------------------------------------------------------
def graph_to_graph_def(graph: Graph, add_shapes: bool = True):
    """The `GraphDef` of `graph` (a `tensorboard.compat.proto.graph_pb2.GraphDef`)."""
    graph_pb2 = tensorflow_proto("graph")
    graph_def = graph_pb2.GraphDef()
    graph_def.versions.producer = GRAPH_PRODUCER
    for op in graph.get_operations():
        node = graph_def.node.add(name=op.name, op=op.type)
        node.input.extend(_input_name(t.name) for t in op.inputs)
        node.input.extend("^" + c.name for c in op.control_inputs)
        for key, value in sorted(op.attrs.items()):
            node.attr[key].CopyFrom(attr_value(value))
        if add_shapes and op.outputs:
            node.attr["_output_shapes"].CopyFrom(
                attr_value([t.shape for t in op.outputs]))
    return graph_def


def _input_name(tensor_name: str) -> str:
    return tensor_name[:-2] if tensor_name.endswith(":0") else tensor_name


def attr_value(value: Any):
    """The `AttrValue` of one flowjit attribute value."""
    attr_pb2 = tensorflow_proto("attr_value")
    attr = attr_pb2.AttrValue()
    if value is None:
        return attr
    if _set_scalar(attr, value):
        return attr
    if isinstance(value, (list, tuple)) and _set_list(attr.list, value):
        if not value:
            attr.list.SetInParent()
        return attr
    from flowjit.ir.printer import format_attr
    attr.Clear()
    attr.s = (_FALLBACK_PREFIX + format_attr(value)).encode("utf-8")
    return attr


def _kind(value: Any) -> Optional[str]:
    if isinstance(value, (bool, np.bool_)):
        return "b"
    if isinstance(value, (int, np.integer)):
        return "i"
    if isinstance(value, (float, np.floating)):
        return "f" if float(np.float32(value)) == float(value) or np.isnan(value) else None
    if isinstance(value, str):
        return "s"
    if isinstance(value, dtypes.DType):
        return "type"
    if isinstance(value, TensorShape):
        return "shape"
    if isinstance(value, np.ndarray):
        return "tensor"
    return None


def _set_scalar(attr, value: Any) -> bool:
    kind = _kind(value)
    if kind is None:
        return False
    if kind == "b":
        attr.b = bool(value)
    elif kind == "i":
        attr.i = int(value)
    elif kind == "f":
        attr.f = float(value)
    elif kind == "s":
        attr.s = value.encode("utf-8")
    elif kind == "type":
        attr.type = _dtype_enum(value)
    elif kind == "shape":
        attr.shape.CopyFrom(shape_proto(value))
    else:
        attr.tensor.CopyFrom(tensor_proto(value))
    return True


def _set_list(attr_list, values) -> bool:
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1 or None in kinds:
        return False
    kind = kinds.pop() if kinds else None
    for value in values:
        if kind == "b":
            attr_list.b.append(bool(value))
        elif kind == "i":
            attr_list.i.append(int(value))
        elif kind == "f":
            attr_list.f.append(float(value))
        elif kind == "s":
            attr_list.s.append(value.encode("utf-8"))
        elif kind == "type":
            attr_list.type.append(_dtype_enum(value))
        elif kind == "shape":
            attr_list.shape.add().CopyFrom(shape_proto(value))
        else:
            attr_list.tensor.add().CopyFrom(tensor_proto(value))
    return True


def _dtype_enum(dtype: dtypes.DType) -> int:
    if dtype is dtypes.string:
        return tensorflow_proto("types").DT_STRING
    from flowjit.io.tensor_bundle import dtype_to_enum
    return dtype_to_enum(dtype)


def shape_proto(shape: TensorShape):
    proto = tensorflow_proto("tensor_shape").TensorShapeProto()
    if shape.dims is None:
        proto.unknown_rank = True
    else:
        for d in shape.dims:
            proto.dim.add(size=-1 if d is None else d)
    return proto


def tensor_proto(array: np.ndarray):
    proto = tensorflow_proto("tensor").TensorProto()
    array = np.asarray(array)
    proto.tensor_shape.CopyFrom(shape_proto(TensorShape(array.shape)))
    if array.dtype.kind in "OUS":
        proto.dtype = tensorflow_proto("types").DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.reshape(-1))
        return proto
    proto.dtype = _dtype_enum(dtypes.as_dtype(array.dtype))
    proto.tensor_content = np.ascontiguousarray(
        array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return proto


# -- GraphDef -> flowjit ----------------------------------------------------------------------
def shape_from_proto(proto) -> TensorShape:
    if proto.unknown_rank:
        return TensorShape(None)
    return TensorShape([None if d.size < 0 else d.size for d in proto.dim])


def array_from_tensor_proto(proto) -> np.ndarray:
    """The value of a `TensorProto`, in any of the encodings TensorFlow writes."""
    types = tensorflow_proto("types")
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.dtype == types.DT_STRING:
        values = np.array(list(proto.string_val), dtype=object)
        dtype = None
    else:
        from flowjit.io.tensor_bundle import dtype_from_enum
        dtype = dtype_from_enum(proto.dtype).np_dtype
        if proto.tensor_content:
            values = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        else:
            values = np.array(_typed_values(proto, dtype), dtype=dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if values.size == count:
        return values.reshape(shape).astype(values.dtype if dtype is None else dtype)
    if values.size == 0:
        return np.zeros(shape, dtype=dtype if dtype is not None else object)
    # TensorFlow stores a tensor of equal values as its leading values: pad with the last.
    return np.concatenate([values, np.repeat(values[-1:], count - values.size)]).reshape(shape)


def _typed_values(proto, dtype: np.dtype) -> List[Any]:
    if dtype == np.float16:
        return list(np.array(proto.half_val, np.uint16).view(np.float16))
    if dtype.kind == "f":
        return list(proto.float_val) if dtype == np.float32 else list(proto.double_val)
    if dtype.kind == "b":
        return list(proto.bool_val)
    if dtype == np.int64:
        return list(proto.int64_val)
    return list(proto.int_val)


def attr_from_proto(attr) -> Any:
    """The flowjit value of an `AttrValue` (inverse of `attr_value`)."""
    which = attr.WhichOneof("value")
    if which is None:
        return None
    if which == "s":
        text = attr.s.decode("utf-8", errors="replace")
        if text.startswith(_FALLBACK_PREFIX):
            return _parse_ir_attr(text[len(_FALLBACK_PREFIX):])
        return text
    if which in ("b", "i", "f"):
        return getattr(attr, which)
    if which == "type":
        return _dtype_from_enum(attr.type)
    if which == "shape":
        return shape_from_proto(attr.shape)
    if which == "tensor":
        return array_from_tensor_proto(attr.tensor)
    if which == "list":
        for field, convert in (("s", lambda v: v.decode("utf-8")), ("i", int), ("f", float),
                               ("b", bool), ("type", _dtype_from_enum),
                               ("shape", shape_from_proto), ("tensor", array_from_tensor_proto)):
            items = getattr(attr.list, field)
            if len(items):
                return tuple(convert(v) for v in items)  # flowjit's lists are tuples
        return ()
    raise errors.UnimplementedError(f"flowjit cannot read an attribute of kind {which!r}")


def _dtype_from_enum(value: int) -> dtypes.DType:
    if value == tensorflow_proto("types").DT_STRING:
        return dtypes.string
    from flowjit.io.tensor_bundle import dtype_from_enum
    return dtype_from_enum(value)


def _parse_ir_attr(text: str) -> Any:
    from flowjit.ir.parser import _Parser, _tokenize
    return _Parser(_tokenize(text)).attr()


def _accepted_attrs(op_type: str) -> Optional[set]:
    """The attribute names an op's shape rule takes; None if it takes any (**kwargs)."""
    params = inspect.signature(OP_DEFS[op_type].infer).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def import_graph_def(graph_def, graph: Graph, name_prefix: str = "") -> Tuple[
        Dict[str, Operation], List[str]]:
    """Adds the nodes of `graph_def` to `graph` (names prefixed with `name_prefix/`).
    Returns (node name -> new op, names of the nodes skipped)."""
    nodes = {node.name: node for node in graph_def.node}
    created: Dict[str, Operation] = {}
    skipped: List[str] = []
    prefix = f"{name_prefix.rstrip('/')}/" if name_prefix else ""
    for name in _topological_order(nodes):
        node = nodes[name]
        op_type = TF_OP_ALIASES.get(node.op, node.op)
        sources = [_split_input(i) for i in node.input]
        if op_type not in OP_DEFS or any(src in skipped for src, _, _ in sources):
            skipped.append(name)
            continue
        inputs = [created[src].outputs[index] for src, index, control in sources
                  if not control]
        control_inputs = [created[src] for src, _, control in sources if control]
        accepted = _accepted_attrs(op_type)
        attrs = {key: attr_from_proto(value) for key, value in node.attr.items()
                 if not key.startswith("_") and (accepted is None or key in accepted)}
        try:
            op = graph.create_op(op_type, inputs, attrs, name=prefix + name + "/",
                                 control_inputs=control_inputs)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise errors.InvalidArgumentError(
                f"Cannot import node '{name}' ({node.op}) of the GraphDef: {e}") from None
        created[name] = op
    return created, skipped


def _split_input(text: str) -> Tuple[str, int, bool]:
    if text.startswith("^"):
        return text[1:], 0, True
    name, _, index = text.partition(":")
    return name, int(index) if index else 0, False


def _topological_order(nodes: Dict[str, Any]) -> List[str]:
    """Node names, every node after its inputs (GraphDefs need not be ordered)."""
    def sources(name: str):
        for text in nodes[name].input:
            source = _split_input(text)[0]
            if source not in nodes:
                raise errors.InvalidArgumentError(
                    f"Node '{name}' of the GraphDef has input '{text}', which is not a node "
                    f"of the GraphDef")
            yield source

    order: List[str] = []
    done: Dict[str, bool] = {}  # False while on the stack, True once ordered
    for root in nodes:
        if root in done:
            continue
        done[root] = False
        stack = [(root, sources(root))]
        while stack:
            name, pending = stack[-1]
            for source in pending:
                if source not in done:
                    done[source] = False
                    stack.append((source, sources(source)))
                    break
                if not done[source]:
                    raise errors.InvalidArgumentError(
                        f"The GraphDef has a cycle through node '{source}'")
            else:
                stack.pop()
                done[name] = True
                order.append(name)
    return order
