"""`tf.train.export_meta_graph` / `import_meta_graph`: a graph with its collections and saver
settings as TensorFlow's `MetaGraphDef` (the `.meta` file beside a checkpoint).

The graph is a real `GraphDef` (`flowjit.graph.graph_def`). Collections are kept as TF1 keeps
them: variables as `VariableDef`s (variable collections by TF1's names), tensors and ops as
node names, strings, ints and floats as values. The `SaverDef` keeps the Saver's settings
(`max_to_keep`, `keep_checkpoint_every_n_hours`, format V2); flowjit's Saver is not made of
graph ops, so its tensor and op names are empty.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence

from flowjit import errors
from flowjit.graph.core import Graph, GraphKeys, Operation, Tensor, get_default_graph
from flowjit.graph.graph_def import graph_to_graph_def, import_graph_def
from flowjit.io.protos import tensorflow_proto
from flowjit.io.tensor_bundle import atomic_write

_logger = logging.getLogger("flowjit")

VARIABLE_COLLECTIONS = (GraphKeys.GLOBAL_VARIABLES, GraphKeys.TRAINABLE_VARIABLES,
                        GraphKeys.LOCAL_VARIABLES, GraphKeys.MODEL_VARIABLES,
                        GraphKeys.GLOBAL_STEP, "moving_average_variables")


def export_meta_graph(filename: Optional[str] = None, meta_info_def=None, graph_def=None,
                      saver_def=None, collection_list: Optional[Sequence[str]] = None,
                      as_text: bool = False, graph: Optional[Graph] = None,
                      export_scope: Optional[str] = None, clear_devices: bool = False,
                      clear_extraneous_savers: bool = False, strip_default_attrs: bool = False,
                      save_debug_info: bool = False, **kwargs: Any):
    """Returns the `MetaGraphDef` of `graph` (the default graph), and writes it to
    `filename` (binary, or text with `as_text`) when given."""
    from flowjit import __version__
    from flowjit.variables import Variable

    meta_graph_pb2 = tensorflow_proto("meta_graph")
    graph = graph or get_default_graph()
    meta = meta_graph_pb2.MetaGraphDef()
    if meta_info_def is not None:
        meta.meta_info_def.CopyFrom(meta_info_def)
    meta.meta_info_def.tensorflow_version = f"flowjit {__version__}"
    meta.graph_def.CopyFrom(graph_def if graph_def is not None else graph_to_graph_def(graph))
    if saver_def is not None:
        meta.saver_def.CopyFrom(saver_def)
    keys = collection_list if collection_list is not None else graph.get_all_collection_keys()
    for key in keys:
        values = graph.get_collection(key)
        if not values:
            continue
        collection = meta.collection_def[key]
        if key in VARIABLE_COLLECTIONS and all(isinstance(v, Variable) for v in values):
            collection.bytes_list.value.extend(
                _variable_def(v).SerializeToString() for v in values)
        elif all(isinstance(v, (Tensor, Operation, Variable)) for v in values):
            collection.node_list.value.extend(
                v.name if not isinstance(v, Variable) else v.name for v in values)
        elif all(isinstance(v, (str, bytes)) for v in values):
            collection.bytes_list.value.extend(
                v.encode("utf-8") if isinstance(v, str) else v for v in values)
        elif all(isinstance(v, bool) is False and isinstance(v, int) for v in values):
            collection.int64_list.value.extend(values)
        elif all(isinstance(v, (int, float)) for v in values):
            collection.float_list.value.extend(values)
        else:
            del meta.collection_def[key]
            _logger.warning("export_meta_graph: collection '%s' holds values of a kind a "
                            "MetaGraphDef cannot keep; it is left out", key)
    if filename:
        write_meta_graph_file(meta, filename, as_text)
    return meta


def _variable_def(variable):
    variable_def = tensorflow_proto("variable").VariableDef(
        variable_name=variable.name, initializer_name=variable.initializer.name,
        snapshot_name=variable.name, trainable=bool(variable.trainable))
    if variable.initial_value is not None:
        variable_def.initial_value_name = variable.initial_value.name
    return variable_def


def write_meta_graph_file(meta, filename: str, as_text: bool = False) -> None:
    if as_text:
        from google.protobuf import text_format
        data = text_format.MessageToString(meta).encode("utf-8")
    else:
        data = meta.SerializeToString()
    directory = os.path.dirname(filename)
    if directory:
        os.makedirs(directory, exist_ok=True)
    atomic_write(filename, data)


def read_meta_graph_file(filename: str):
    """A `MetaGraphDef` from a binary or text file; errors name the file."""
    meta_graph_pb2 = tensorflow_proto("meta_graph")
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise errors.NotFoundError(f"Meta graph file '{filename}' does not exist") from None
    meta = meta_graph_pb2.MetaGraphDef()
    from google.protobuf import message, text_format
    try:
        meta.ParseFromString(data)
        if meta.HasField("graph_def") or not data:
            return meta
    except message.DecodeError:
        pass
    try:
        text_format.Parse(data.decode("utf-8"), meta)
        return meta
    except (UnicodeDecodeError, text_format.ParseError) as e:
        raise errors.DataLossError(f"Meta graph file '{filename}' is neither a binary nor a "
                                   f"text MetaGraphDef (truncated or corrupted?): {e}") from None


def import_meta_graph(meta_graph_or_file, clear_devices: bool = False,
                      import_scope: Optional[str] = None, **kwargs: Any):
    """Adds the graph and collections of a `.meta` file (or `MetaGraphDef`) to the default
    graph; returns a `Saver` for its variables (None when it has none)."""
    meta = meta_graph_or_file if not isinstance(meta_graph_or_file, (str, os.PathLike)) \
        else read_meta_graph_file(os.fspath(meta_graph_or_file))
    graph = get_default_graph()
    created, skipped = import_graph_def(meta.graph_def, graph, import_scope or "")
    if skipped:
        _logger.info("import_meta_graph: skipped %d nodes of op types flowjit does not have "
                     "(and what needs them): %s", len(skipped), ", ".join(skipped[:8]))
    prefix = f"{import_scope.rstrip('/')}/" if import_scope else ""
    variables = []
    for key, collection in meta.collection_def.items():
        kind = collection.WhichOneof("kind")
        if kind is None:
            continue
        for value in getattr(collection, kind).value:
            item = _collection_item(graph, key, kind, value, prefix)
            if item is not None:
                graph.add_to_collection(key, item)
                if key == GraphKeys.GLOBAL_VARIABLES:
                    variables.append(item)
    if not variables:
        return None
    from flowjit.train.saver import Saver
    saver_def = meta.saver_def if meta.HasField("saver_def") else None
    return Saver(var_list=variables, saver_def=saver_def)


def _collection_item(graph: Graph, key: str, kind: str, value: Any, prefix: str):
    if kind == "bytes_list" and key in VARIABLE_COLLECTIONS:
        variable_def = tensorflow_proto("variable").VariableDef.FromString(value)
        return _variable_from_def(graph, variable_def, prefix)
    if kind == "node_list":
        try:
            return graph.as_graph_element(prefix + value)
        except (KeyError, ValueError):
            return None  # a node that was skipped (an op type flowjit does not have)
    if kind == "bytes_list":
        return value.decode("utf-8", errors="replace")
    return value


def _variable_from_def(graph: Graph, variable_def, prefix: str):
    from flowjit.variables import Variable
    try:
        tensor = graph.get_tensor_by_name(prefix + variable_def.variable_name)
        initializer = graph.get_operation_by_name(prefix + variable_def.initializer_name)
    except (KeyError, ValueError):
        _logger.warning("import_meta_graph: variable '%s' has no op in the imported graph; "
                        "left out", variable_def.variable_name)
        return None
    initial_value = None
    if variable_def.initial_value_name:
        try:
            initial_value = graph.get_tensor_by_name(prefix + variable_def.initial_value_name)
        except (KeyError, ValueError):
            initial_value = None
    return Variable._from_graph(tensor, initializer, initial_value, variable_def.trainable)
