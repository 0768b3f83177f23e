"""MNIST's input_data (IDX files, downloads from a local HTTP server, errors), the DataSet's
batching, and the scikit-learn digits stand-in that an unmodified tutorial runs on."""
import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.config import config
from flowjit.datasets import DataSet, load_digits
from flowjit.datasets.digits import bilinear_matrix, upsample
from flowjit.datasets import mnist
from flowjit.examples.tutorials.mnist import input_data


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + b"".join(struct.pack(">I", d) for d in array.shape) + \
        array.astype(np.uint8).tobytes()


def write_fake_mnist(directory, n_train=30, n_test=10, gz=True, seed=0):
    """Small random IDX files under MNIST's names; returns the arrays written."""
    rng = np.random.RandomState(seed)
    arrays = {mnist.TRAIN_IMAGES: rng.randint(0, 256, (n_train, 28, 28)),
              mnist.TRAIN_LABELS: rng.randint(0, 10, n_train),
              mnist.TEST_IMAGES: rng.randint(0, 256, (n_test, 28, 28)),
              mnist.TEST_LABELS: rng.randint(0, 10, n_test)}
    os.makedirs(directory, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            with gzip.open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(directory, name[:-3]), "wb") as f:
                f.write(data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path, gz=gz)
    data = input_data.read_data_sets(str(tmp_path), one_hot=True, validation_size=5)
    train_images = arrays[mnist.TRAIN_IMAGES]
    assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == \
        (25, 5, 10)
    np.testing.assert_allclose(data.validation.images,
                               train_images[:5].reshape(5, 784) / 255.0, rtol=1e-6)
    assert data.train.images.dtype == np.float32
    assert np.array_equal(data.test.labels.argmax(1), arrays[mnist.TEST_LABELS])
    raw = input_data.read_data_sets(str(tmp_path), dtype=tf.uint8, reshape=False,
                                    validation_size=0)
    assert raw.train.images.shape == (30, 28, 28, 1)
    assert np.array_equal(raw.train.images[..., 0], train_images)
    assert np.array_equal(raw.train.labels, arrays[mnist.TRAIN_LABELS])


def test_next_batch_epochs():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    data = DataSet(images, np.arange(10), dtype=tf.uint8, seed=1)
    seen = np.concatenate([data.next_batch(5)[1] for _ in range(2)])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))  # shuffled
    assert data.epochs_completed == 0
    data = DataSet(images, np.arange(10), dtype=tf.uint8, seed=2)
    first = np.concatenate([data.next_batch(4)[1] for _ in range(2)])
    x, y = data.next_batch(4)   # crosses into the next epoch: 2 old + 2 new
    assert data.epochs_completed == 1 and len(y) == 4
    assert sorted(np.concatenate([first, y[:2]])) == list(range(10))
    assert np.array_equal(x.reshape(-1), y)  # images and labels stay paired
    ordered = DataSet(images, np.arange(10), dtype=tf.uint8)
    batches = [ordered.next_batch(4, shuffle=False)[1] for _ in range(3)]
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]
    with pytest.raises(ValueError, match="batch_size"):
        ordered.next_batch(11)


@pytest.fixture
def http_server(tmp_path):
    """A server on loopback serving tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def checksums_of(directory):
    return {name: (os.path.getsize(directory / name),
                   hashlib.md5((directory / name).read_bytes()).hexdigest())
            for name in os.listdir(directory)}


def test_downloads_and_verifies(tmp_path, http_server):
    served, url = http_server
    arrays = write_fake_mnist(served)
    target = tmp_path / "MNIST_data"
    data = input_data.read_data_sets(str(target), validation_size=0, source_url=url,
                                     checksums=checksums_of(served))
    assert sorted(os.listdir(target)) == sorted(arrays)
    assert np.array_equal(data.test.labels, arrays[mnist.TEST_LABELS])
    bad = dict(checksums_of(served), **{mnist.TRAIN_IMAGES: (1, "0" * 32)})
    other = tmp_path / "other"
    with pytest.raises(errors.DataLossError, match="MD5"):
        input_data.read_data_sets(str(other), source_url=url, checksums=bad)
    assert not os.path.exists(other / mnist.TRAIN_IMAGES)
    assert not [n for n in os.listdir(other) if "download" in n]


def test_offline_message_says_where_to_put_files(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.UnavailableError) as caught:
        input_data.read_data_sets(str(tmp_path / "data"), source_url=f"http://127.0.0.1:{port}")
    message = str(caught.value)
    assert str(tmp_path / "data") in message and mnist.TRAIN_IMAGES in message
    assert "FLOWJIT_MNIST=digits" in message


def test_bad_idx_files(tmp_path):
    write_fake_mnist(tmp_path)
    path = tmp_path / mnist.TEST_IMAGES
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2])
    with pytest.raises(errors.DataLossError, match=mnist.TEST_IMAGES):
        input_data.read_data_sets(str(tmp_path))
    with gzip.open(path, "wb") as f:
        f.write(idx_bytes(np.zeros((3, 28, 28)))[:-5])
    with pytest.raises(errors.DataLossError, match="truncated or corrupted"):
        input_data.read_data_sets(str(tmp_path))


# -- the digits ------------------------------------------------------------------------------------
def test_bilinear_upsampling():
    weights = bilinear_matrix(8, 20)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    flat = upsample(np.full((1, 8, 8), 16.0), 28)[0, ..., 0]
    assert (flat[4:24, 4:24] == 255).all() and flat.sum() == 255 * 400  # centred 20x20 box
    ramp = upsample(np.tile(np.arange(8.0) * 2, (1, 8, 1)), 28)[0, 10, 4:24]
    assert (np.diff(ramp.astype(int)) >= 0).all()


def test_load_digits_is_mnist_shaped_and_learnable():
    data = load_digits(one_hot=True)
    assert data.train.images.shape == (1400, 784) and data.test.images.shape == (297, 784)
    assert data.train.images.dtype == np.float32 and data.train.images.max() == 1.0
    assert (data.train.labels.sum(0) > 100).all()      # every class present
    # nearest class mean on the 28x28 images classifies the held-out digits
    labels = data.train.labels.argmax(1)
    means = np.stack([data.train.images[labels == k].mean(0) for k in range(10)])
    distances = ((data.test.images[:, None, :] - means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == data.test.labels.argmax(1)).mean() > 0.85
    assert load_digits(size=14).train.images.shape == (1400, 196)


def test_setting_selects_digits(monkeypatch):
    monkeypatch.setenv("FLOWJIT_MNIST", "digits")
    monkeypatch.setenv("FLOWJIT_MNIST_URL", "http://mirror.invalid/mnist/")
    from flowjit.config import _from_environment
    fresh = _from_environment()
    assert (fresh.mnist, fresh.mnist_url) == ("digits", "http://mirror.invalid/mnist/")


def test_unmodified_tutorial_runs_on_digits(monkeypatch, tmp_path):
    """TF1's softmax-regression tutorial, only the import lines changed."""
    monkeypatch.setattr(config, "mnist", "digits")
    mnist_data = input_data.read_data_sets(str(tmp_path / "MNIST_data"), one_hot=True)
    assert not os.path.exists(tmp_path / "MNIST_data")  # nothing downloaded
    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.matmul(x, W) + b
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    for _ in range(200):
        batch_xs, batch_ys = mnist_data.train.next_batch(100)
        sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    result = sess.run(accuracy, feed_dict={x: mnist_data.test.images,
                                           y_: mnist_data.test.labels})
    sess.close()
    assert mnist_data.validation.num_examples == round(5000 / 12)
    assert result > 0.85
