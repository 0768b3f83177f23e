"""Checkpoints in TensorFlow's V2 format: the table and bundle byte layout, TensorFlow-written
fixtures read by flowjit, flowjit-written checkpoints read by TensorFlow (when it is there),
the Saver's bookkeeping, restore checks, corrupted files and interrupted saves."""
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.io import crc, sstable, tensor_bundle
from flowjit.io.protos import checkpoint_protos

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fixtures"))
from make_tf_checkpoints import FIXTURE_DIR, GLOBAL_STEP, fixture_values  # noqa: E402

FIXTURE_PREFIX = os.path.join(FIXTURE_DIR, f"model.ckpt-{GLOBAL_STEP}")


def tf_python():
    """A Python that has real TensorFlow: this one, or $FLOWJIT_TEST_TF_PYTHON."""
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    return os.environ.get("FLOWJIT_TEST_TF_PYTHON")


def small_model():
    with tf.variable_scope("dense"):
        w = tf.get_variable("W", [3, 2], initializer=tf.random_normal_initializer(seed=3))
        b = tf.get_variable("b", [2], initializer=tf.constant_initializer(0.5))
    steps = tf.Variable(0, dtype=tf.int64, name="steps", trainable=False)
    return w, b, steps


# -- the byte layout ------------------------------------------------------------------------------
def test_crc32c_check_value_and_fallback_agree():
    assert crc.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    data = np.random.RandomState(0).bytes(1000)
    assert crc._crc32c_python(data) == crc.crc32c(data)
    assert crc.unmask(crc.mask(12345)) == 12345


def test_table_round_trips_over_many_blocks():
    entries = [(f"layer{i // 10}/kernel{i:03d}".encode(), bytes([i % 256]) * (i % 37))
               for i in range(300)]
    table = sstable.build_table(sorted(entries), block_size=256)
    assert list(sstable.read_table(table)) == sorted(entries)
    # The footer's index handle leads to one index entry per data block: many here.
    footer = table[-sstable.FOOTER_SIZE:]
    _, pos = sstable._decode_handle(footer, 0, 40)
    index_handle, _ = sstable._decode_handle(footer, pos, 40)
    index = list(sstable._block_entries(sstable._read_block(table, index_handle, len(table))))
    assert len(index) > 10
    assert [k for k, _ in index] == sorted(k for k, _ in index)


def test_bundle_byte_layout(tmp_path):
    """Decodes a flowjit checkpoint by the format's rules alone, field by field."""
    values = {"b": np.array([1, -2], np.int64), "a/w": np.arange(6, dtype=np.float32)
              .reshape(2, 3)}
    prefix = str(tmp_path / "m")
    tensor_bundle.write_bundle(prefix, values)
    data = open(prefix + ".data-00000-of-00001", "rb").read()
    index = open(prefix + ".index", "rb").read()
    # data: the tensors' little-endian bytes, in key order, back to back
    assert data == values["a/w"].astype("<f4").tobytes() + values["b"].astype("<i8").tobytes()
    # index footer: two varint handles padded to 40 bytes, then the magic
    assert struct.unpack("<Q", index[-8:])[0] == 0xDB4775248B80FB57
    meta_handle, pos = sstable._decode_handle(index, len(index) - 48, len(index) - 8)
    index_handle, pos = sstable._decode_handle(index, pos, len(index) - 8)
    assert set(index[pos:len(index) - 8]) <= {0}
    assert meta_handle[0] + meta_handle[1] + 5 == index_handle[0]  # metaindex, then index
    assert index[meta_handle[0]:sum(meta_handle)] == struct.pack("<II", 0, 1)  # empty block
    # one data block at offset 0, with trailer byte 0 and the masked crc of block + type byte
    (key, handle), = sstable._block_entries(index[index_handle[0]:sum(index_handle)])
    assert key == b"b"
    (offset, size), _ = sstable._decode_handle(handle, 0, len(handle))
    assert offset == 0 and index[size] == 0
    assert struct.unpack("<I", index[size + 1:size + 5])[0] == \
        crc.mask(crc.crc32c(index[:size + 1]))
    entries = dict(sstable._block_entries(index[:size]))
    protos = checkpoint_protos()
    header = protos.BundleHeaderProto.FromString(entries[b""])
    assert (header.num_shards, header.endianness, header.version.producer) == (1, 0, 1)
    entry = protos.BundleEntryProto.FromString(entries[b"a/w"])
    assert (entry.dtype, [d.size for d in entry.shape.dim], entry.offset, entry.size) == \
        (1, [2, 3], 0, 24)  # DT_FLOAT
    assert entry.crc32c == crc.mask(crc.crc32c(data[:24]))
    entry = protos.BundleEntryProto.FromString(entries[b"b"])
    assert (entry.dtype, entry.offset, entry.size) == (9, 24, 16)  # DT_INT64


# -- TensorFlow's checkpoints in flowjit, and flowjit's in TensorFlow ------------------------------
def test_reads_tensorflow_fixture():
    assert tf.train.latest_checkpoint(FIXTURE_DIR) == FIXTURE_PREFIX
    reader = tf.train.load_checkpoint(FIXTURE_DIR)
    expected = dict(fixture_values(), global_step=np.int64(GLOBAL_STEP))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(expected)
    for name, value in expected.items():
        got = reader.get_tensor(name)
        assert got.dtype == np.asarray(value).dtype and np.array_equal(got, value), name


def test_imports_tensorflow_meta_graph_and_restores():
    saver = tf.train.import_meta_graph(FIXTURE_PREFIX + ".meta")
    assert sorted(v.op.name for v in tf.global_variables()) == \
        sorted(list(fixture_values()) + ["global_step"])
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], np.float32)
    values = fixture_values()
    with tf.Session() as sess:
        saver.restore(sess, FIXTURE_PREFIX)
        relu = sess.run("relu:0", {"x:0": x})
        assert sess.run(tf.train.get_global_step()) == GLOBAL_STEP
    np.testing.assert_allclose(relu, np.maximum(x @ values["dense/W"] + values["dense/b"], 0),
                               rtol=1e-6)


def test_saver_restores_tensorflow_fixture_into_new_variables():
    values = fixture_values()
    variables = {name: tf.Variable(np.zeros_like(v), name=name) for name, v in values.items()}
    with tf.Session() as sess:
        tf.train.Saver(variables).restore(sess, FIXTURE_PREFIX)
        for name, value in sess.run(variables).items():
            assert np.array_equal(value, values[name]), name


@pytest.mark.skipif(tf_python() is None, reason="real TensorFlow is not installed "
                    "(set FLOWJIT_TEST_TF_PYTHON to a Python that has it)")
def test_tensorflow_reads_flowjit_checkpoint(tmp_path):
    values = fixture_values()
    variables = [tf.Variable(v, name=name) for name, v in values.items()]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        prefix = tf.train.Saver(variables).save(sess, str(tmp_path / "fj"), global_step=3)
    out = subprocess.run([tf_python(), os.path.join(HERE, "fixtures", "make_tf_checkpoints.py"),
                          "read", prefix], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-2000:]
    read = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(read) == sorted(values)
    for name, value in values.items():
        assert read[name]["dtype"] == tf.as_dtype(value.dtype).name
        assert read[name]["shape"] == list(value.shape)
        assert np.array_equal(np.array(read[name]["value"], value.dtype), value), name


# -- the Saver ------------------------------------------------------------------------------------
def test_save_restore_round_trip_and_state_file(tmp_path):
    w, b, steps = small_model()
    saver = tf.train.Saver(max_to_keep=2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        saved = sess.run([w, b])
        step = tf.train.get_or_create_global_step()
        sess.run(tf.assign(step, 1))
        paths = [saver.save(sess, str(tmp_path / "model"), global_step=s)
                 for s in (step, np.int64(2), 3)]  # a variable, a numpy int, an int
        sess.run([tf.assign(w, tf.zeros([3, 2])), tf.assign_add(steps, 5)])
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        restored = sess.run([w, b, steps])
    assert paths == [str(tmp_path / f"model-{s}") for s in (1, 2, 3)]
    assert np.array_equal(restored[0], saved[0]) and np.array_equal(restored[1], saved[1])
    assert restored[2] == 0
    assert saver.last_checkpoints == paths[1:]
    assert not tf.train.checkpoint_exists(paths[0])  # past max_to_keep: deleted, meta too
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["checkpoint"] + [f"model-{s}{ext}" for s in (2, 3)
                          for ext in (".index", ".data-00000-of-00001", ".meta")])
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == paths[-1]
    assert list(state.all_model_checkpoint_paths) == paths[1:]
    assert len(state.all_model_checkpoint_timestamps) == 2


def test_relative_paths_and_var_list_dict(tmp_path):
    w, b, _ = small_model()
    saver = tf.train.Saver({"weights": w, "bias": b}, save_relative_paths=True)
    os.makedirs(tmp_path / "run")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        saver.save(sess, str(tmp_path / "run" / "m"), write_meta_graph=False)
        values = sess.run([w, b])
    text = open(tmp_path / "run" / "checkpoint").read()
    assert 'model_checkpoint_path: "m"' in text
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "run"), str(moved))  # relative paths survive a move
    reader = tf.train.load_checkpoint(str(moved))
    assert sorted(reader.get_variable_to_shape_map()) == ["bias", "weights"]
    assert np.array_equal(reader.get_tensor("weights"), values[0])
    assert not os.path.exists(str(moved / "m.meta"))


def test_keep_checkpoint_every_n_hours(tmp_path, monkeypatch):
    import flowjit.train.saver as saver_module
    clock = [1000.0]
    monkeypatch.setattr(saver_module.time, "time", lambda: clock[0])
    small_model()
    saver = tf.train.Saver(max_to_keep=1, keep_checkpoint_every_n_hours=1)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(6):  # one save every 30 minutes
            saver.save(sess, str(tmp_path / "m"), global_step=step, write_meta_graph=False)
            clock[0] += 1800
    kept = sorted(int(name.split("-")[1].split(".")[0]) for name in os.listdir(tmp_path)
                  if name.endswith(".index"))
    # saves at 0, .5, 1, 1.5, 2, 2.5 h: the first past each whole hour is preserved
    assert kept == [3, 5]
    assert saver.last_checkpoints == [str(tmp_path / "m-5")]


def test_saver_argument_errors(tmp_path):
    w, b, _ = small_model()
    with pytest.raises(ValueError, match="same name: dense/W"):
        tf.train.Saver([w, w])
    with pytest.raises(TypeError, match="not a Variable"):
        tf.train.Saver([w, 3])
    with tf.Graph().as_default(), pytest.raises(ValueError, match="No variables to save"):
        tf.train.Saver()
    saver = tf.train.Saver()
    with tf.Session() as sess, pytest.raises(ValueError, match="Parent directory"):
        sess.run(tf.global_variables_initializer())
        saver.save(sess, str(tmp_path / "no" / "such" / "dir" / "m"))
    with tf.Session() as sess, pytest.raises(ValueError, match="not a valid checkpoint"):
        saver.restore(sess, str(tmp_path / "nothing"))


# -- restore checks, corruption, interrupted saves ------------------------------------------------
def saved_small_model(tmp_path):
    w, b, steps = small_model()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        prefix = tf.train.Saver().save(sess, str(tmp_path / "m"))
    return prefix


def test_restore_names_every_mismatch_and_changes_nothing(tmp_path):
    prefix = saved_small_model(tmp_path)
    tf.reset_default_graph()
    with tf.variable_scope("dense"):
        w = tf.get_variable("W", [3, 4])                               # wrong shape
        b = tf.get_variable("b", [2], dtype=tf.float64)                # wrong dtype
    extra = tf.Variable([1.0, 2.0], name="extra")                      # not in the checkpoint
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run([w, b, extra])
        with pytest.raises(errors.InvalidArgumentError) as caught:
            tf.train.Saver().restore(sess, prefix)
        after = sess.run([w, b, extra])
    message = str(caught.value)
    assert "'dense/W:0' has shape (3, 4)" in message and "[3, 2]" in message
    assert "'dense/b:0' has dtype float64" in message and "float32" in message
    assert "key 'extra' (for variable 'extra:0') not found" in message
    assert all(np.array_equal(x, y) for x, y in zip(before, after))


def test_missing_variable_is_not_found(tmp_path):
    prefix = saved_small_model(tmp_path)
    tf.reset_default_graph()
    tf.Variable(1.0, name="other")
    with tf.Session() as sess, pytest.raises(errors.NotFoundError, match="'other'"):
        tf.train.Saver().restore(sess, prefix)


def test_truncated_and_corrupted_files(tmp_path):
    prefix = saved_small_model(tmp_path)
    index = open(prefix + ".index", "rb").read()
    data = open(prefix + ".data-00000-of-00001", "rb").read()

    def restore_error(index_bytes, data_bytes):
        open(prefix + ".index", "wb").write(index_bytes)
        open(prefix + ".data-00000-of-00001", "wb").write(data_bytes)
        with tf.Session() as sess, pytest.raises(errors.OpError) as caught:
            tf.train.Saver().restore(sess, prefix)
        return caught.value

    error = restore_error(index[:-10], data)
    assert isinstance(error, errors.DataLossError) and prefix + ".index" in str(error)
    flipped = bytearray(index)
    flipped[3] ^= 0xFF
    error = restore_error(bytes(flipped), data)
    assert isinstance(error, errors.DataLossError) and "checksum" in str(error)
    error = restore_error(index, data[:-4])
    assert isinstance(error, errors.DataLossError) and "truncated" in str(error)
    flipped = bytearray(data)
    flipped[0] ^= 0x01
    error = restore_error(index, bytes(flipped))
    assert isinstance(error, errors.DataLossError) and "dense/W" in str(error)
    os.remove(prefix + ".data-00000-of-00001")
    with tf.Session() as sess, pytest.raises(errors.NotFoundError, match="data file"):
        tf.train.Saver().restore(sess, prefix)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    w, _, _ = small_model()
    saver = tf.train.Saver()
    real_write = tensor_bundle.atomic_write

    def write_then_interrupt(path, data):
        if path.endswith(".index"):  # the data file is in place; the index never lands
            with open(path + ".tmp-partial", "wb") as f:
                f.write(data[:7])
            os.remove(path + ".tmp-partial")
            raise KeyboardInterrupt
        real_write(path, data)

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = saver.save(sess, str(tmp_path / "m"), global_step=1)
        saved = sess.run(w)
        sess.run(tf.assign(w, tf.ones([3, 2])))
        monkeypatch.setattr(tensor_bundle, "atomic_write", write_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            saver.save(sess, str(tmp_path / "m"), global_step=2)
        monkeypatch.setattr(tensor_bundle, "atomic_write", real_write)
        assert tf.train.latest_checkpoint(str(tmp_path)) == first
        assert not tf.train.checkpoint_exists(str(tmp_path / "m-2"))
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        assert np.array_equal(sess.run(w), saved)
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_corrupt_state_file_is_data_loss(tmp_path):
    (tmp_path / "checkpoint").write_text("model_checkpoint_path: [not a string\n")
    with pytest.raises(errors.DataLossError, match="checkpoint"):
        tf.train.get_checkpoint_state(str(tmp_path))
    assert tf.train.get_checkpoint_state(str(tmp_path / "absent")) is None
    assert tf.train.latest_checkpoint(str(tmp_path / "absent")) is None


# -- meta graphs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_text", [False, True])
def test_meta_graph_round_trip(tmp_path, as_text):
    from test_serialize import FETCHES, build_model, feeds_for
    graph = build_model()
    with graph.as_default():
        tf.add_to_collection("notes", "hello")
        tf.add_to_collection("outputs", graph.get_tensor_by_name("model/loss:0"))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            prefix = tf.train.Saver().save(sess, str(tmp_path / "m"), write_meta_graph=False)
            expected = sess.run(FETCHES, feeds_for(graph))
        meta = tf.train.export_meta_graph(str(tmp_path / "g.meta"), as_text=as_text)
    assert meta.graph_def.node[0].name == graph.get_operations()[0].name
    imported = tf.Graph()
    with imported.as_default():
        saver = tf.train.import_meta_graph(str(tmp_path / "g.meta"))
        assert [op.name for op in imported.get_operations()] == \
            [op.name for op in graph.get_operations()]
        assert [v.name for v in tf.trainable_variables()] == \
            [v.name for v in graph.get_collection("trainable_variables")]
        assert tf.get_collection("notes") == ["hello"]
        assert tf.get_collection("outputs")[0].name == "model/loss:0"
        with tf.Session() as sess:
            saver.restore(sess, prefix)
            got = sess.run(FETCHES, {imported.get_tensor_by_name(t.name): v
                                     for t, v in feeds_for(graph).items()})
    for name, x, y in zip(FETCHES, expected, got):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_import_meta_graph_errors(tmp_path):
    with pytest.raises(errors.NotFoundError, match="nope.meta"):
        tf.train.import_meta_graph(str(tmp_path / "nope.meta"))
    (tmp_path / "bad.meta").write_bytes(b"\xff\x00garbage\x12")
    with pytest.raises(errors.DataLossError, match="bad.meta"):
        tf.train.import_meta_graph(str(tmp_path / "bad.meta"))
