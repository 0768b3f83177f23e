"""The LLVM backend's vectorizable float32 exp/log/tanh (codegen/vmath.py) and sigmoid:
maximum error in ulp against float64 numpy over the float32 range, and special values."""
import numpy as np
import pytest

import flowjit as tf

# Measured maximum errors (see the module docstring of codegen/vmath.py), with headroom.
CASES = {
    "exp": (tf.exp, np.exp, 1.0),
    "tanh": (tf.tanh, np.tanh, 2.5),  # 2.02 measured over 2^20 samples
    "log": (tf.log, np.log, 3.0),
    "sigmoid": (tf.sigmoid, lambda v: 1 / (1 + np.exp(-v)), 2.5),
}
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38,
                     88.7, 89.0, -87.3, -103.9, -104.5, 1e30, -1e30], np.float32)


def _inputs(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name == "log":  # positive floats of every magnitude, denormals included
        return np.exp(rng.uniform(np.log(1e-45), np.log(3e38), 1 << 18)).astype(np.float32)
    wide = rng.uniform(-104, 89, 1 << 18).astype(np.float32)
    return np.concatenate([wide, np.linspace(-2, 2, 40001, dtype=np.float32)])


def _run(fn, values):
    x = tf.placeholder(tf.float32, [values.size])
    with tf.Session(backend="llvm") as sess:
        return sess.run(fn(x), {x: values})


@pytest.mark.parametrize("name", sorted(CASES))
def test_max_ulp_error(name):
    fn, reference, bound = CASES[name]
    values = _inputs(name)
    got = _run(fn, values).astype(np.float64)
    with np.errstate(all="ignore"):
        exact = reference(values.astype(np.float64))
        spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    finite = np.isfinite(exact) & (np.abs(exact) < 3.4e38)
    errors = np.abs(got[finite] - exact[finite]) / spacing[finite]
    assert errors.max() <= bound, f"{name}: {errors.max():.2f} ulp"


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_values_match_numpy(name):
    fn, reference, _ = CASES[name]
    got = _run(fn, SPECIALS)
    with np.errstate(all="ignore"):
        expected = reference(SPECIALS.astype(np.float64)).astype(np.float32)
    both_nan = np.isnan(got) & np.isnan(expected)
    close = np.isclose(got, expected, rtol=3e-7, atol=0)
    assert np.all(both_nan | close), (SPECIALS, got, expected)
