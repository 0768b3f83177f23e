"""The string dtype end to end: constants, feeds, fetches (bytes, as TF1), string ops, shape
ops on strings, the IR's `string` type and constants, the host-only rule."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.lower import lower
from flowjit.runtime import cpu

WORDS = ["alpha", "b\u00e9ta", "", "d\n\"q\"\\"]


def _bytes(items):
    out = np.empty(len(items), dtype=object)
    out[:] = [w.encode("utf-8") if isinstance(w, str) else w for w in items]
    return out


def test_hello_tensorflow_prints_bytes_as_tf1(capsys):
    text = "Hello, TensorFlow!"
    hello = tf.constant(text)
    with tf.Session() as sess:
        print(sess.run(hello))
    assert capsys.readouterr().out == repr(text.encode("utf-8")) + "\n"


def test_string_constants_fetch_as_object_arrays_of_bytes():
    words = tf.constant(WORDS)
    grid = tf.constant(np.array([["a", "b"], ["c", "d"]]))
    raw = tf.constant([b"\x00\xff", b"x"])
    assert words.dtype == tf.string and grid.shape.as_list() == [2, 2]
    with tf.Session() as sess:
        got_words, got_grid, got_raw = sess.run([words, grid, raw])
    assert got_words.dtype == object and list(got_words) == list(_bytes(WORDS))
    assert got_grid.tolist() == [[b"a", b"b"], [b"c", b"d"]]
    assert got_raw.tolist() == [b"\x00\xff", b"x"]


def test_string_placeholders_take_str_bytes_and_numpy_string_arrays():
    s = tf.placeholder(tf.string, [None], name="s")
    doubled = tf.concat([s, s], 0)
    with tf.Session() as sess:
        for fed in (WORDS, _bytes(WORDS), np.array(WORDS[:2])):
            want = list(_bytes(list(fed))) * 2
            assert list(sess.run(doubled, {s: fed})) == want
        with pytest.raises(errors.FeedError, match=r"'s:0'.*dtype string.*int is not a "
                                                   r"string"):
            sess.run(s, {s: ["a", 1]})
        with pytest.raises(errors.FeedError, match=r"shape \(2, 1\).*'s:0'"):
            sess.run(s, {s: [["a"], ["b"]]})


def test_shape_ops_on_strings_match_numpy():
    s = tf.placeholder(tf.string, [4], name="s")
    value = _bytes(WORDS)
    fetches = {
        "identity": tf.identity(s),
        "reshape": tf.reshape(s, [2, -1]),
        "transpose": tf.transpose(tf.reshape(s, [2, 2])),
        "gather": tf.gather(s, [3, 0, 3]),
        "stack": tf.stack([s, s], axis=1),
        "slice": s[1:3],
        "expand": tf.expand_dims(s, 0),
        "where": tf.where(tf.constant([True, False, True, False]), s, s[::-1]),
    }
    want = {
        "identity": value, "reshape": value.reshape(2, -1),
        "transpose": value.reshape(2, 2).T, "gather": value[[3, 0, 3]],
        "stack": np.stack([value, value], axis=1), "slice": value[1:3],
        "expand": value[None], "where": np.where([True, False, True, False], value,
                                                 value[::-1]),
    }
    with tf.Session() as sess:
        got = sess.run(fetches, {s: WORDS})
    for key in fetches:
        assert got[key].dtype == object, key
        assert got[key].tolist() == want[key].tolist(), key


def test_as_string_formats_as_printf_does():
    floats = np.array([1.5, -0.25, 1234.5678], np.float32)
    ints = np.array([7, -42, 0], np.int32)
    with tf.Session() as sess:
        default, short, sci, padded, flags = sess.run([
            tf.as_string(floats), tf.strings.as_string(floats, shortest=True),
            tf.as_string(floats, scientific=True, precision=2),
            tf.as_string(ints, width=4, fill="0"), tf.as_string([True, False])])
    as_bytes = lambda fmt, xs: [(fmt % x).encode() for x in xs.tolist()]  # noqa: E731
    assert default.tolist() == as_bytes("%f", floats.astype(np.float64))
    assert short.tolist() == as_bytes("%g", floats.astype(np.float64))
    assert sci.tolist() == as_bytes("%.2e", floats.astype(np.float64))
    assert padded.tolist() == as_bytes("%04d", ints)
    assert flags.tolist() == [b"true", b"false"]
    with pytest.raises(errors.DTypeError, match="dtype string"):
        tf.as_string(tf.constant("already text"))


def test_string_join_broadcasts_and_separates():
    names = tf.placeholder(tf.string, [None], name="names")
    numbers = tf.placeholder(tf.int32, [None], name="numbers")
    joined = tf.strings.join([names, tf.as_string(numbers), "!"], separator="-")
    legacy = tf.string_join([tf.reshape(names, [-1, 1]), names])
    fed_names, fed_numbers = ["x", "yz"], [3, 45]
    with tf.Session() as sess:
        got, got_legacy = sess.run([joined, legacy], {names: fed_names, numbers: fed_numbers})
    assert got.tolist() == [f"{a}-{b}-!".encode() for a, b in zip(fed_names, fed_numbers)]
    assert got_legacy.tolist() == [[(a + b).encode() for b in fed_names] for a in fed_names]
    with pytest.raises(errors.ShapeError, match="do not broadcast"):
        tf.string_join([tf.constant(["a", "b"]), tf.constant(["a", "b", "c"])])


def test_tf_Print_prints_string_values(capsys):
    s = tf.placeholder(tf.string, [2])
    out = tf.Print(s, [s], "words: ")
    with tf.Session() as sess:
        assert sess.run(out, {s: ["hi", "there"]}).tolist() == [b"hi", b"there"]
    assert capsys.readouterr().err == "words: [hi there]\n"


def test_the_ir_prints_and_parses_string_types_and_constants():
    s = tf.placeholder(tf.string, [2], name="s")
    joined = tf.string_join([s, tf.constant(["\x00\n\"\\", "\u00e9t\u00e9"]), "tail"], "|")
    from flowjit.ir.core import TensorType
    func = lower([joined], feed_types={s: TensorType(tf.string, (2,))})
    text = print_func(func)
    assert "%s: string[2]" in text and "dense<string[2]" in text
    assert print_func(parse_func(text)) == text
    constants = [i.attrs["value"] for i in parse_func(text).body if i.op == "constant"]
    assert constants[0].tolist() == _bytes(["\x00\n\"\\", "\u00e9t\u00e9"]).tolist()


def test_string_values_never_reach_native_kernels():
    s = tf.placeholder(tf.string, [2], name="s")
    x = tf.placeholder(tf.float32, [2], name="x")
    picked = tf.where(x > 0.0, s, tf.as_string(x * 2.0))
    total = tf.reduce_sum(x * 3.0)
    from flowjit.ir.core import TensorType
    func = lower([picked, total], feed_types={s: TensorType(tf.string, (2,)),
                                              x: TensorType(tf.float32, (2,))})
    optimized = optimize(func, CompileOptions(verify=True))
    run, stats = cpu.build(optimized)
    string_instrs = [i for i in optimized.body if any(
        v.type.dtype is tf.string for v in i.operands + i.results)]
    assert string_instrs and stats["numpy"] >= len(string_instrs)
    out_picked, out_total = run([_bytes(["a", "b"]), np.array([1.0, -1.0], np.float32)])
    assert out_picked.tolist() == [b"a", b"-2.000000"]
    assert out_total == np.float32(0.0)


def test_string_graphs_serialize(tmp_path):
    tf.string_join([tf.constant(["a\tb", "\u00fc"]), tf.as_string(tf.constant([1, 2]))],
                   name="out")
    tf.train.write_graph(tf.get_default_graph(), str(tmp_path), "g.graph")
    graph = tf.train.load_graph(str(tmp_path / "g.graph"))
    with tf.Session(graph=graph) as sess:
        assert sess.run("out:0").tolist() == [b"a\tb1", "\u00fc2".encode()]
