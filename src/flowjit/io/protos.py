"""The protocol buffers flowjit reads and writes, loaded lazily.

TensorFlow's own protos (`MetaGraphDef`, `GraphDef`, `SaverDef`, `ConfigProto`, `StepStats`,
`Summary`, ...) come from the `tensorboard` package, which ships them under
`tensorboard.compat.proto` (package `tensorboard`; the wire format is TensorFlow's). The few
TensorFlow messages it does not ship - the tensor bundle's header and entries, and the
`checkpoint` state file - are declared here with protobuf's descriptor API, field for field
as in TensorFlow's `tensor_bundle.proto`, `tensor_slice.proto` and `checkpoint_state.proto`.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType, SimpleNamespace

_INSTALL_HINT = "pip install 'flowjit[io]' (protobuf and tensorboard)"


class MissingDependencyError(ImportError):
    """An optional package flowjit needs for this feature is not installed."""


def tensorflow_proto(name: str) -> ModuleType:
    """`tensorboard.compat.proto.<name>_pb2`, e.g. `tensorflow_proto("meta_graph")`."""
    try:
        return importlib.import_module(f"tensorboard.compat.proto.{name}_pb2")
    except ImportError as e:
        raise MissingDependencyError(
            f"Reading and writing TensorFlow's file formats needs the protobuf messages of "
            f"the 'tensorboard' package, which could not be imported ({e}). "
            f"Install them with: {_INSTALL_HINT}") from None


# (name, number, label, type, type_name) per field; types as in descriptor.proto.
_OPTIONAL, _REPEATED = 1, 3
_DOUBLE, _INT64, _INT32, _FIXED32, _STRING, _MESSAGE, _ENUM = 1, 3, 5, 7, 9, 11, 14

_MESSAGES = {
    "TensorSliceProto": [("extent", 1, _REPEATED, _MESSAGE, ".flowjit.io.TensorSliceProto.Extent")],
    "TensorSliceProto.Extent": [("start", 1, _OPTIONAL, _INT64, None),
                                ("length", 2, _OPTIONAL, _INT64, None)],
    "BundleHeaderProto": [
        ("num_shards", 1, _OPTIONAL, _INT32, None),
        ("endianness", 2, _OPTIONAL, _ENUM, ".flowjit.io.BundleHeaderProto.Endianness"),
        ("version", 3, _OPTIONAL, _MESSAGE, ".tensorboard.VersionDef")],
    "BundleEntryProto": [
        ("dtype", 1, _OPTIONAL, _ENUM, ".tensorboard.DataType"),
        ("shape", 2, _OPTIONAL, _MESSAGE, ".tensorboard.TensorShapeProto"),
        ("shard_id", 3, _OPTIONAL, _INT32, None),
        ("offset", 4, _OPTIONAL, _INT64, None),
        ("size", 5, _OPTIONAL, _INT64, None),
        ("crc32c", 6, _OPTIONAL, _FIXED32, None),
        ("slices", 7, _REPEATED, _MESSAGE, ".flowjit.io.TensorSliceProto")],
    "CheckpointState": [
        ("model_checkpoint_path", 1, _OPTIONAL, _STRING, None),
        ("all_model_checkpoint_paths", 2, _REPEATED, _STRING, None),
        ("all_model_checkpoint_timestamps", 3, _REPEATED, _DOUBLE, None),
        ("last_preserved_timestamp", 4, _OPTIONAL, _DOUBLE, None)],
}


@functools.lru_cache(maxsize=None)
def checkpoint_protos() -> SimpleNamespace:
    """The message classes `BundleHeaderProto`, `BundleEntryProto`, `TensorSliceProto` and
    `CheckpointState`, built once from a descriptor (in a pool of their own)."""
    tensorflow_proto("types")  # imports (and checks) the dependencies
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    file = descriptor_pb2.FileDescriptorProto(
        name="flowjit/io/checkpoint.proto", package="flowjit.io", syntax="proto3",
        dependency=["tensorboard/compat/proto/types.proto",
                    "tensorboard/compat/proto/tensor_shape.proto",
                    "tensorboard/compat/proto/versions.proto"])
    messages = {}
    for full_name, fields in _MESSAGES.items():
        outer, _, inner = full_name.partition(".")
        if inner:
            message = messages[outer].nested_type.add(name=inner)
        else:
            message = messages[outer] = file.message_type.add(name=outer)
        for name, number, label, type_, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=type_)
            if type_name:
                field.type_name = type_name
    endianness = messages["BundleHeaderProto"].enum_type.add(name="Endianness")
    endianness.value.add(name="LITTLE", number=0)
    endianness.value.add(name="BIG", number=1)

    pool = descriptor_pool.DescriptorPool()
    for dependency in ("types", "tensor_shape", "versions"):
        serialized = tensorflow_proto(dependency).DESCRIPTOR.serialized_pb
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(serialized))
    pool.Add(file)
    classes = {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"flowjit.io.{name}"))
        for name in ("BundleHeaderProto", "BundleEntryProto", "TensorSliceProto",
                     "CheckpointState")}
    return SimpleNamespace(**classes)
