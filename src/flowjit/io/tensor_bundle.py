"""TensorFlow's V2 checkpoint format, the "tensor bundle", for one shard.

A checkpoint `prefix` is two files:

    prefix.data-00000-of-00001   the tensors' bytes, one after another (little-endian, C order)
    prefix.index                 an SSTable (`flowjit.io.sstable`): key "" -> BundleHeaderProto
                                 (shard count, endianness, version), then each tensor's name ->
                                 BundleEntryProto (dtype, shape, shard, offset and size in the
                                 data file, masked CRC-32C of its bytes)

Each file is written atomically (a temporary name, then a rename), the data file first and
the index last: a crash while writing leaves the files that were there before, and a new
index is never seen without its data. (A crash between the two renames, when re-saving the
same prefix, pairs the old index with the new data; the checksums then report it.) Reading
verifies every checksum.
"""
from __future__ import annotations

import os
import uuid
from typing import Dict, Iterable, Mapping, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.io import sstable
from flowjit.io.crc import masked_crc32c
from flowjit.io.protos import checkpoint_protos, tensorflow_proto

BUNDLE_VERSION = 1          # TensorFlow's kTensorBundleVersion
HEADER_KEY = b""


def data_path(prefix: str, shard: int = 0, num_shards: int = 1) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def index_path(prefix: str) -> str:
    return f"{prefix}.index"


def _dtype_enums() -> Dict[dtypes.DType, int]:
    types = tensorflow_proto("types")
    return {dtypes.float16: types.DT_HALF, dtypes.float32: types.DT_FLOAT,
            dtypes.float64: types.DT_DOUBLE, dtypes.int8: types.DT_INT8,
            dtypes.int16: types.DT_INT16, dtypes.int32: types.DT_INT32,
            dtypes.int64: types.DT_INT64, dtypes.uint8: types.DT_UINT8,
            dtypes.bool_: types.DT_BOOL}


def dtype_to_enum(dtype: dtypes.DType) -> int:
    """The `tensorflow.DataType` enum value of a flowjit dtype."""
    try:
        return _dtype_enums()[dtype]
    except KeyError:
        raise errors.UnimplementedError(
            f"flowjit cannot store {dtype.name} tensors in a checkpoint") from None


def dtype_from_enum(value: int) -> dtypes.DType:
    for dtype, enum in _dtype_enums().items():
        if enum == value:
            return dtype
    name = tensorflow_proto("types").DataType.Name(value) \
        if value in tensorflow_proto("types").DataType.values() else str(value)
    raise errors.UnimplementedError(f"flowjit cannot read {name} tensors from a checkpoint")


def atomic_write(path: str, data: bytes) -> None:
    """Writes `path` whole or not at all: a temporary file beside it, flushed, then renamed."""
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def write_bundle(prefix: str, tensors: Mapping[str, np.ndarray],
                 block_size: int = sstable.DEFAULT_BLOCK_SIZE) -> None:
    """Writes `tensors` (name -> array) as the checkpoint `prefix`."""
    protos = checkpoint_protos()
    entries = []
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        dtype = dtypes.as_dtype(array.dtype)
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        entry = protos.BundleEntryProto(dtype=dtype_to_enum(dtype), shard_id=0, offset=offset,
                                        size=len(data), crc32c=masked_crc32c(data))
        for dim in array.shape:
            entry.shape.dim.add(size=dim)
        entries.append((name.encode("utf-8"), entry.SerializeToString()))
        chunks.append(data)
        offset += len(data)
    header = protos.BundleHeaderProto(num_shards=1, endianness=0)
    header.version.producer = BUNDLE_VERSION
    table = sstable.build_table([(HEADER_KEY, header.SerializeToString())] + entries,
                                block_size)
    directory = os.path.dirname(prefix)
    if directory:
        os.makedirs(directory, exist_ok=True)
    atomic_write(data_path(prefix), b"".join(chunks))
    atomic_write(index_path(prefix), table)


class BundleReader:
    """Reads a checkpoint: `names()`, `entry(name)` (dtype, shape), `tensor(name)`.

    Errors are `flowjit.errors` classes that name the file: NotFoundError for a missing file or
    tensor, DataLossError for truncated or corrupted bytes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        path = index_path(prefix)
        try:
            with open(path, "rb") as f:
                table = f.read()
        except FileNotFoundError:
            raise errors.NotFoundError(
                f"Checkpoint '{prefix}' not found: there is no index file '{path}'") from None
        protos = checkpoint_protos()
        self._entries: Dict[str, object] = {}
        header = None
        try:
            for key, value in sstable.read_table(table):
                if key == HEADER_KEY:
                    header = protos.BundleHeaderProto.FromString(value)
                else:
                    self._entries[key.decode("utf-8")] = protos.BundleEntryProto.FromString(value)
        except sstable.TableFormatError as e:
            raise errors.DataLossError(f"Checkpoint index '{path}' is unreadable: {e}") from None
        except Exception as e:  # a protobuf DecodeError: the bytes passed the CRC but are not
            raise errors.DataLossError(  # the messages they should be
                f"Checkpoint index '{path}' holds malformed entries ({e})") from None
        self._check_header(header, path)
        self._data: Dict[int, bytes] = {}

    def _check_header(self, header, path: str) -> None:
        if header is None:
            raise errors.DataLossError(f"Checkpoint index '{path}' has no bundle header: it "
                                       f"is not a TensorFlow V2 checkpoint index")
        if header.endianness != 0:
            raise errors.UnimplementedError(f"Checkpoint '{self.prefix}' is big-endian")
        if header.version.min_consumer > BUNDLE_VERSION:
            raise errors.UnimplementedError(
                f"Checkpoint '{self.prefix}' needs a reader of bundle version "
                f">= {header.version.min_consumer}; flowjit reads version {BUNDLE_VERSION}")
        self.num_shards = max(1, header.num_shards)

    def names(self) -> Iterable[str]:
        return self._entries.keys()

    def has_tensor(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Tuple[dtypes.DType, Tuple[int, ...]]:
        """(dtype, shape) of a tensor, without reading its data."""
        entry = self._lookup(name)
        return dtype_from_enum(entry.dtype), tuple(d.size for d in entry.shape.dim)

    def _lookup(self, name: str):
        try:
            return self._entries[name]
        except KeyError:
            raise errors.NotFoundError(
                f"Key {name} not found in checkpoint '{self.prefix}' (it has: "
                f"{', '.join(sorted(self._entries)) or 'no tensors'})") from None

    def tensor(self, name: str) -> np.ndarray:
        entry = self._lookup(name)
        dtype, shape = self.entry(name)
        if len(entry.slices):
            raise errors.UnimplementedError(
                f"Tensor '{name}' of checkpoint '{self.prefix}' is saved in slices "
                f"(a partitioned variable); flowjit reads whole tensors only")
        data = self._shard(entry.shard_id)
        path = data_path(self.prefix, entry.shard_id, self.num_shards)
        end = entry.offset + entry.size
        if end > len(data):
            raise errors.DataLossError(
                f"Tensor '{name}' lies at bytes {entry.offset}..{end} of '{path}', which has "
                f"only {len(data)} bytes: the file is truncated")
        raw = data[entry.offset:end]
        if masked_crc32c(raw) != entry.crc32c:
            raise errors.DataLossError(f"Checksum mismatch for tensor '{name}' in '{path}': "
                                       f"the file is corrupted")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.np_dtype.itemsize
        if entry.size != expected:
            raise errors.DataLossError(
                f"Tensor '{name}' in '{path}' has {entry.size} bytes; a {dtype.name} tensor "
                f"of shape {list(shape)} has {expected}")
        array = np.frombuffer(raw, dtype=dtype.np_dtype.newbyteorder("<")).reshape(shape)
        return array.astype(dtype.np_dtype)  # native byte order, and a copy we own

    def _shard(self, shard: int) -> bytes:
        if shard not in self._data:
            path = data_path(self.prefix, shard, self.num_shards)
            try:
                with open(path, "rb") as f:
                    self._data[shard] = f.read()
            except FileNotFoundError:
                raise errors.NotFoundError(
                    f"Checkpoint '{self.prefix}' is missing its data file '{path}'") from None
        return self._data[shard]
