"""tf.train optimizers, the global step and exponential_decay against TF1's reference formulas.

The expected values are computed independently in numpy from TF1's documented update rules
(the `Apply*` training kernels): every optimizer runs 5 steps on

    loss = reduce_sum(0.5 * (W - T)^2 * C) + reduce_sum(b^2)

whose gradients are known exactly: grad_W = (W - T) * C and grad_b = 2 * b.

The main runs use hyper-parameters that are exact in float32 (dyadic fractions), so the
float64 runs do not depend on TF1's habit of converting Python-float hyper-parameters to a
float32 tensor and then casting them to the variable's dtype (see the separate test below).
"""
import numpy as np
import pytest

import flowjit as tf

STEPS = 5

_rng = np.random.RandomState(20240611)
W0 = _rng.uniform(0.5, 1.5, size=(3, 2))
T_NP = _rng.uniform(-1.5, -0.5, size=(3, 2))
C_NP = _rng.uniform(0.5, 1.5, size=(3, 2))
B0 = np.array([0.75, -1.25])

DTYPES = [pytest.param(tf.float32, np.float32, 1e-5, id="float32"),
          pytest.param(tf.float64, np.float64, 1e-6, id="float64")]


def _as(np_dtype, value):
    """`value` rounded to `np_dtype`, returned as float64 for the reference computation."""
    return np.asarray(value, dtype=np_dtype).astype(np.float64)


def _build_problem(tf_dtype, np_dtype):
    W = tf.Variable(W0.astype(np_dtype), dtype=tf_dtype, name="W")
    b = tf.Variable(B0.astype(np_dtype), dtype=tf_dtype, name="b")
    T = tf.constant(T_NP.astype(np_dtype), dtype=tf_dtype)
    C = tf.constant(C_NP.astype(np_dtype), dtype=tf_dtype)
    loss = tf.reduce_sum(0.5 * tf.square(W - T) * C) + tf.reduce_sum(tf.square(b))
    return W, b, loss


def _ref_grads(np_dtype, W, b):
    T, C = _as(np_dtype, T_NP), _as(np_dtype, C_NP)
    return {"W": (W - T) * C, "b": 2.0 * b}


def _ref_loss(np_dtype, W, b):
    T, C = _as(np_dtype, T_NP), _as(np_dtype, C_NP)
    return np.sum(0.5 * (W - T) ** 2 * C) + np.sum(b ** 2)


# ---------------------------------------------------------------------------------------------
# numpy references, written from TF1's documented formulas
# ---------------------------------------------------------------------------------------------
class RefGD:
    slots = {}

    def __init__(self, lr):
        self.lr = lr

    def begin(self, t):
        pass

    def end(self):
        pass

    def apply(self, var, g, s):
        return var - self.lr * g


class RefMomentum(RefGD):
    slots = {"momentum": 0.0}

    def __init__(self, lr, momentum, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov

    def apply(self, var, g, s):
        s["momentum"] = self.mu * s["momentum"] + g
        if self.nesterov:
            return var - self.lr * (g + self.mu * s["momentum"])
        return var - self.lr * s["momentum"]


class RefAdagrad(RefGD):
    def __init__(self, lr, initial=0.1):
        self.lr = lr
        self.slots = {"accumulator": initial}

    def apply(self, var, g, s):
        s["accumulator"] = s["accumulator"] + g * g
        return var - self.lr * g / np.sqrt(s["accumulator"])


class RefAdadelta(RefGD):
    slots = {"accum": 0.0, "accum_update": 0.0}

    def __init__(self, lr, rho, eps):
        self.lr, self.rho, self.eps = lr, rho, eps

    def apply(self, var, g, s):
        rho, eps = self.rho, self.eps
        s["accum"] = rho * s["accum"] + (1 - rho) * g * g
        update = np.sqrt(s["accum_update"] + eps) / np.sqrt(s["accum"] + eps) * g
        s["accum_update"] = rho * s["accum_update"] + (1 - rho) * update * update
        return var - self.lr * update


class RefRMSProp(RefGD):
    def __init__(self, lr, decay, momentum, eps, centered):
        self.lr, self.decay, self.mu, self.eps, self.centered = lr, decay, momentum, eps, centered
        self.slots = {"rms": 1.0, "momentum": 0.0}  # TF1: 'rms' starts at ONE
        if centered:
            self.slots["mg"] = 0.0

    def apply(self, var, g, s):
        d = self.decay
        s["rms"] = d * s["rms"] + (1 - d) * g * g
        denom = s["rms"]
        if self.centered:
            s["mg"] = d * s["mg"] + (1 - d) * g
            denom = s["rms"] - s["mg"] ** 2
        s["momentum"] = self.mu * s["momentum"] + self.lr * g / np.sqrt(denom + self.eps)
        return var - s["momentum"]


class RefAdam(RefGD):
    slots = {"m": 0.0, "v": 0.0}

    def __init__(self, lr, beta1, beta2, eps):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        # TF1: beta1_power / beta2_power are float32 variables created from the Python floats
        # and multiplied (in float32) by beta1 / beta2 after every step.
        self.b1_power = np.float32(beta1)
        self.b2_power = np.float32(beta2)

    def begin(self, t):
        bp1, bp2 = float(self.b1_power), float(self.b2_power)
        self.lr_t = self.lr * np.sqrt(1 - bp2) / (1 - bp1)

    def end(self):
        self.b1_power = np.float32(self.b1_power * np.float32(self.b1))
        self.b2_power = np.float32(self.b2_power * np.float32(self.b2))

    def apply(self, var, g, s):
        s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
        s["v"] = self.b2 * s["v"] + (1 - self.b2) * g * g
        return var - self.lr_t * s["m"] / (np.sqrt(s["v"]) + self.eps)


# (id, flowjit factory, reference factory); the hyper-parameters are exact binary fractions
# except the epsilons, which each reference gets rounded to the variable's dtype (`r`).
CASES = [
    ("sgd",
     lambda: tf.train.GradientDescentOptimizer(0.0625),
     lambda r: RefGD(0.0625)),
    ("momentum",
     lambda: tf.train.MomentumOptimizer(0.0625, 0.875),
     lambda r: RefMomentum(0.0625, 0.875)),
    ("momentum_nesterov",
     lambda: tf.train.MomentumOptimizer(0.0625, 0.875, use_nesterov=True),
     lambda r: RefMomentum(0.0625, 0.875, nesterov=True)),
    ("adagrad",
     lambda: tf.train.AdagradOptimizer(0.25),
     lambda r: RefAdagrad(0.25, r(0.1))),
    ("adagrad_initial_0.5",
     lambda: tf.train.AdagradOptimizer(0.25, initial_accumulator_value=0.5),
     lambda r: RefAdagrad(0.25, 0.5)),
    ("adadelta",
     lambda: tf.train.AdadeltaOptimizer(0.5, rho=0.875, epsilon=0.0625),
     lambda r: RefAdadelta(0.5, 0.875, 0.0625)),
    ("rmsprop",
     lambda: tf.train.RMSPropOptimizer(0.03125, decay=0.875, epsilon=2.0 ** -20),
     lambda r: RefRMSProp(0.03125, 0.875, 0.0, 2.0 ** -20, centered=False)),
    ("rmsprop_momentum",
     lambda: tf.train.RMSPropOptimizer(0.03125, decay=0.875, momentum=0.5, epsilon=2.0 ** -20),
     lambda r: RefRMSProp(0.03125, 0.875, 0.5, 2.0 ** -20, centered=False)),
    ("rmsprop_centered",
     lambda: tf.train.RMSPropOptimizer(0.03125, decay=0.875, epsilon=2.0 ** -20,
                                       centered=True),
     lambda r: RefRMSProp(0.03125, 0.875, 0.0, 2.0 ** -20, centered=True)),
    ("rmsprop_centered_momentum",
     lambda: tf.train.RMSPropOptimizer(0.03125, decay=0.875, momentum=0.5, epsilon=2.0 ** -20,
                                       centered=True),
     lambda r: RefRMSProp(0.03125, 0.875, 0.5, 2.0 ** -20, centered=True)),
    ("adam",
     lambda: tf.train.AdamOptimizer(0.0625, beta1=0.875, beta2=0.9921875, epsilon=2.0 ** -20),
     lambda r: RefAdam(0.0625, 0.875, 0.9921875, 2.0 ** -20)),
]

# TF1's defaults. Only float32 variables: there TF1 and flowjit both compute with the
# hyper-parameters rounded to float32, so the reference rounds them too (`r`).
DEFAULT_CASES = [
    ("adagrad_defaults",
     lambda: tf.train.AdagradOptimizer(0.5),
     lambda r: RefAdagrad(0.5, r(0.1))),
    ("adadelta_defaults",
     lambda: tf.train.AdadeltaOptimizer(),
     lambda r: RefAdadelta(r(0.001), r(0.95), r(1e-8))),
    ("rmsprop_defaults",
     lambda: tf.train.RMSPropOptimizer(0.01),
     lambda r: RefRMSProp(r(0.01), r(0.9), 0.0, r(1e-10), centered=False)),
    ("rmsprop_centered_defaults",
     lambda: tf.train.RMSPropOptimizer(0.01, centered=True),
     lambda r: RefRMSProp(r(0.01), r(0.9), 0.0, r(1e-10), centered=True)),
    ("adam_defaults",
     lambda: tf.train.AdamOptimizer(),
     lambda r: RefAdam(r(0.001), r(0.9), r(0.999), r(1e-8))),
]


def _run_and_compare(make_opt, make_ref, tf_dtype, np_dtype, rtol):
    W, b, loss = _build_problem(tf_dtype, np_dtype)
    opt = make_opt()
    train_op = opt.minimize(loss)
    ref = make_ref(lambda x: float(_as(np_dtype, x)))

    state = {"W": _as(np_dtype, W0), "b": _as(np_dtype, B0)}
    ref_slots = {name: {slot: np.full_like(value, init) for slot, init in ref.slots.items()}
                 for name, value in state.items()}
    tf_vars = {"W": W, "b": b}
    assert opt.get_slot_names() == sorted(ref.slots)
    fetch_slots = {(name, slot): opt.get_slot(tf_vars[name], slot)
                   for name in tf_vars for slot in ref.slots}
    powers = {v.name: v for v in opt.variables() if "_power" in v.name}

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t in range(1, STEPS + 1):
            grads = _ref_grads(np_dtype, state["W"], state["b"])
            ref.begin(t)
            for name in state:
                state[name] = ref.apply(state[name], grads[name], ref_slots[name])
            ref.end()

            assert sess.run(train_op) is None
            got_W, got_b, got_slots, got_powers = sess.run([W, b, fetch_slots, powers])
            assert got_W.dtype == np_dtype and got_b.dtype == np_dtype
            np.testing.assert_allclose(got_W, state["W"], rtol=rtol, err_msg=f"W, step {t}")
            np.testing.assert_allclose(got_b, state["b"], rtol=rtol, err_msg=f"b, step {t}")
            for (name, slot), value in got_slots.items():
                assert value.dtype == np_dtype
                np.testing.assert_allclose(value, ref_slots[name][slot], rtol=rtol,
                                           err_msg=f"slot {slot!r} of {name}, step {t}")
            if isinstance(ref, RefAdam):
                np.testing.assert_allclose(got_powers["beta1_power:0"], ref.b1_power, rtol=1e-6)
                np.testing.assert_allclose(got_powers["beta2_power:0"], ref.b2_power, rtol=1e-6)


@pytest.mark.parametrize("tf_dtype,np_dtype,rtol", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_five_steps_match_tf1_reference(case, tf_dtype, np_dtype, rtol):
    _, make_opt, make_ref = case
    _run_and_compare(make_opt, make_ref, tf_dtype, np_dtype, rtol)


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=[c[0] for c in DEFAULT_CASES])
def test_five_steps_with_tf1_default_hyperparameters_float32(case):
    _, make_opt, make_ref = case
    _run_and_compare(make_opt, make_ref, tf.float32, np.float32, 1e-5)


def test_momentum_nesterov_differs_from_plain_momentum():
    # Guard against a reference that would accidentally make the two cases identical.
    g = np.array([1.0])
    plain, nesterov = RefMomentum(0.5, 0.5), RefMomentum(0.5, 0.5, nesterov=True)
    assert plain.apply(np.array([0.0]), g, {"momentum": 0.0}) != \
        nesterov.apply(np.array([0.0]), g, {"momentum": 0.0})


# ---------------------------------------------------------------------------------------------
# slots and optimizer.variables()
# ---------------------------------------------------------------------------------------------
SLOT_CASES = [
    # (factory, {slot: initial value}, expected variables() names)
    (lambda: tf.train.GradientDescentOptimizer(0.1), {}, []),
    (lambda: tf.train.MomentumOptimizer(0.1, 0.9), {"momentum": 0.0},
     ["W/Momentum:0", "b/Momentum:0"]),
    (lambda: tf.train.AdagradOptimizer(0.1), {"accumulator": 0.1},
     ["W/Adagrad:0", "b/Adagrad:0"]),
    (lambda: tf.train.AdagradOptimizer(0.1, initial_accumulator_value=2.5), {"accumulator": 2.5},
     ["W/Adagrad:0", "b/Adagrad:0"]),
    (lambda: tf.train.AdadeltaOptimizer(), {"accum": 0.0, "accum_update": 0.0},
     ["W/Adadelta:0", "W/Adadelta_1:0", "b/Adadelta:0", "b/Adadelta_1:0"]),
    (lambda: tf.train.RMSPropOptimizer(0.1), {"rms": 1.0, "momentum": 0.0},
     ["W/RMSProp:0", "W/RMSProp_1:0", "b/RMSProp:0", "b/RMSProp_1:0"]),
    (lambda: tf.train.RMSPropOptimizer(0.1, centered=True),
     {"rms": 1.0, "momentum": 0.0, "mg": 0.0},
     ["W/RMSProp:0", "W/RMSProp_1:0", "W/RMSProp_2:0",
      "b/RMSProp:0", "b/RMSProp_1:0", "b/RMSProp_2:0"]),
    (lambda: tf.train.AdamOptimizer(), {"m": 0.0, "v": 0.0},
     ["W/Adam:0", "W/Adam_1:0", "b/Adam:0", "b/Adam_1:0", "beta1_power:0", "beta2_power:0"]),
]


@pytest.mark.parametrize("tf_dtype,np_dtype,rtol", DTYPES)
@pytest.mark.parametrize("make_opt,slot_init,var_names", SLOT_CASES,
                         ids=["sgd", "momentum", "adagrad", "adagrad_2.5", "adadelta", "rmsprop",
                              "rmsprop_centered", "adam"])
def test_slots_initial_values_and_variables(make_opt, slot_init, var_names, tf_dtype, np_dtype,
                                            rtol):
    W, b, loss = _build_problem(tf_dtype, np_dtype)
    opt = make_opt()
    opt.minimize(loss)
    assert opt.get_slot_names() == sorted(slot_init)
    assert [v.name for v in opt.variables()] == var_names
    trainable = set(tf.trainable_variables())
    assert trainable == {W, b}
    global_vars = set(tf.global_variables())
    assert all(v in global_vars for v in opt.variables())
    assert opt.get_slot(W, "no_such_slot") is None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for var in (W, b):
            for slot, init in slot_init.items():
                s = opt.get_slot(var, slot)
                assert s is not None and s in opt.variables()
                assert s.dtype is var.dtype
                assert s.shape.as_list() == var.shape.as_list()
                value = sess.run(s)
                assert value.dtype == np_dtype
                np.testing.assert_allclose(value, np.full(var.shape.as_list(), init, np_dtype),
                                           rtol=rtol)
        if isinstance(opt, tf.train.AdamOptimizer):
            powers = {v.name: sess.run(v) for v in opt.variables() if "_power" in v.name}
            np.testing.assert_allclose(powers["beta1_power:0"], 0.9, rtol=1e-7)
            np.testing.assert_allclose(powers["beta2_power:0"], 0.999, rtol=1e-7)


def test_adam_beta_powers_are_shared_and_advance_once_per_step():
    W, b, loss = _build_problem(tf.float32, np.float32)
    opt = tf.train.AdamOptimizer(0.01, beta1=0.5, beta2=0.75)
    train_op = opt.minimize(loss)
    powers = [v for v in opt.variables() if "_power" in v.name]
    assert [v.name for v in powers] == ["beta1_power:0", "beta2_power:0"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t in range(1, 4):
            sess.run(train_op)
            np.testing.assert_allclose(sess.run(powers), [0.5 ** (t + 1), 0.75 ** (t + 1)],
                                       rtol=1e-7)


def test_adagrad_rejects_non_positive_initial_accumulator():
    with pytest.raises(ValueError):
        tf.train.AdagradOptimizer(0.1, initial_accumulator_value=0.0)


# ---------------------------------------------------------------------------------------------
# minimize / apply_gradients semantics
# ---------------------------------------------------------------------------------------------
def test_global_step_is_int64_and_increments_once_per_step():
    W, b, loss = _build_problem(tf.float32, np.float32)
    gs = tf.train.get_or_create_global_step()
    assert gs.name == "global_step:0" and gs.dtype is tf.int64 and gs.shape.as_list() == []
    assert tf.train.get_or_create_global_step() is gs
    assert tf.train.get_global_step() is gs
    assert gs not in tf.trainable_variables() and gs in tf.global_variables()
    train_op = tf.train.AdamOptimizer(0.01).minimize(loss, global_step=gs)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(gs) == 0
        for t in range(1, STEPS + 1):
            sess.run(train_op)
            value = sess.run(gs)
            assert value == t and value.dtype == np.int64


def test_get_global_step_is_none_before_creation():
    assert tf.train.get_global_step() is None


def test_minimize_with_global_step_still_applies_the_update():
    W, b, loss = _build_problem(tf.float64, np.float64)
    gs = tf.train.get_or_create_global_step()
    train_op = tf.train.GradientDescentOptimizer(0.0625).minimize(loss, global_step=gs)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        g = _ref_grads(np.float64, W0, B0)
        np.testing.assert_allclose(sess.run(W), W0 - 0.0625 * g["W"], rtol=1e-12)
        np.testing.assert_allclose(sess.run(b), B0 - 0.0625 * g["b"], rtol=1e-12)
        assert sess.run(gs) == 1


@pytest.mark.parametrize("tf_dtype,np_dtype,rtol", DTYPES)
def test_placeholder_learning_rate_changes_between_steps(tf_dtype, np_dtype, rtol):
    W, b, loss = _build_problem(tf_dtype, np_dtype)
    lr = tf.placeholder(tf.float32, [], name="learning_rate")
    train_op = tf.train.GradientDescentOptimizer(learning_rate=lr).minimize(loss)
    Wv, bv = _as(np_dtype, W0), _as(np_dtype, B0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for rate in [0.1, 0.0, 0.5, 0.025, 0.3]:
            sess.run(train_op, feed_dict={lr: rate})
            g = _ref_grads(np_dtype, Wv, bv)
            r = float(np.float32(rate))  # the placeholder is float32
            Wv, bv = Wv - r * g["W"], bv - r * g["b"]
            np.testing.assert_allclose(sess.run(W), Wv, rtol=rtol)
            np.testing.assert_allclose(sess.run(b), bv, rtol=rtol)


def test_placeholder_learning_rate_fed_by_name_and_train_fetched_by_name():
    W, b, loss = _build_problem(tf.float32, np.float32)
    lr = tf.placeholder(tf.float32, name="learning_rate")
    train_op = tf.train.MomentumOptimizer(lr, 0.5).minimize(loss, name="train")
    assert train_op.name == "train"
    ref = RefMomentum(None, 0.5)
    Wv, bv = _as(np.float32, W0), _as(np.float32, B0)
    slots = {"W": {"momentum": 0.0}, "b": {"momentum": 0.0}}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for rate in [0.125, 0.0625, 0.25]:
            assert sess.run("train", feed_dict={"learning_rate:0": rate}) is None
            g = _ref_grads(np.float32, Wv, bv)
            ref.lr = rate
            Wv, bv = ref.apply(Wv, g["W"], slots["W"]), ref.apply(bv, g["b"], slots["b"])
            np.testing.assert_allclose(sess.run(W), Wv, rtol=1e-5)
            np.testing.assert_allclose(sess.run(b), bv, rtol=1e-5)


def test_train_op_fetched_by_name_with_global_step():
    W, b, loss = _build_problem(tf.float32, np.float32)
    gs = tf.train.get_or_create_global_step()
    train_op = tf.train.AdamOptimizer(0.01).minimize(loss, global_step=gs, name="train")
    assert train_op.name == "train"
    assert tf.get_default_graph().get_operation_by_name("train") is train_op
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(W)
        assert sess.run(["train"]) == [None]
        assert sess.run("train") is None
        assert sess.run(gs) == 2
        assert not np.allclose(sess.run(W), before)


def test_default_train_op_name_is_the_optimizer_name():
    W, b, loss = _build_problem(tf.float32, np.float32)
    assert tf.train.GradientDescentOptimizer(0.1).minimize(loss).name == "GradientDescent"


def test_run_loss_and_train_returns_loss_before_update():
    W, b, loss = _build_problem(tf.float64, np.float64)
    train_op = tf.train.GradientDescentOptimizer(0.0625).minimize(loss)
    Wv, bv = W0.copy(), B0.copy()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(STEPS):
            got_loss, none = sess.run([loss, train_op])
            assert none is None
            np.testing.assert_allclose(got_loss, _ref_loss(np.float64, Wv, bv), rtol=1e-12)
            g = _ref_grads(np.float64, Wv, bv)
            Wv, bv = Wv - 0.0625 * g["W"], bv - 0.0625 * g["b"]
        np.testing.assert_allclose(sess.run(loss), _ref_loss(np.float64, Wv, bv), rtol=1e-12)


def test_var_list_restricts_the_updated_variables():
    W, b, loss = _build_problem(tf.float64, np.float64)
    opt = tf.train.AdamOptimizer(0.0625)
    train_op = opt.minimize(loss, var_list=[b])
    assert opt.get_slot(W, "m") is None and opt.get_slot(b, "m") is not None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(3):
            sess.run(train_op)
        np.testing.assert_array_equal(sess.run(W), W0)
        assert not np.allclose(sess.run(b), B0)


def test_compute_gradients_pairs_and_apply_gradients_skips_none():
    W, b, loss = _build_problem(tf.float64, np.float64)
    opt = tf.train.MomentumOptimizer(0.0625, 0.5)
    grads_and_vars = opt.compute_gradients(loss)
    assert [v for _, v in grads_and_vars] == [W, b]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        g_W, g_b = sess.run([g for g, _ in grads_and_vars])
    ref = _ref_grads(np.float64, W0, B0)
    np.testing.assert_allclose(g_W, ref["W"], rtol=1e-12)
    np.testing.assert_allclose(g_b, ref["b"], rtol=1e-12)

    train_op = opt.apply_gradients([(grads_and_vars[0][0], W), (None, b)])
    assert opt.get_slot(b, "momentum") is None and opt.get_slot(W, "momentum") is not None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        np.testing.assert_allclose(sess.run(W), W0 - 0.0625 * ref["W"], rtol=1e-12)
        np.testing.assert_array_equal(sess.run(b), B0)


def test_apply_gradients_with_custom_gradient_tensor():
    W = tf.Variable(np.ones((2, 2)), dtype=tf.float64, name="W")
    grad = tf.constant([[1.0, 2.0], [3.0, 4.0]], dtype=tf.float64)
    train_op = tf.train.AdagradOptimizer(0.5).apply_gradients([(grad, W)])
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        np.testing.assert_allclose(sess.run(W), 1.0 - 0.5 * g / np.sqrt(0.1 + g * g),
                                   rtol=1e-12)
        sess.run(train_op)
        np.testing.assert_allclose(
            sess.run(W), 1.0 - 0.5 * g / np.sqrt(0.1 + g * g) - 0.5 * g / np.sqrt(0.1 + 2 * g * g),
            rtol=1e-12)


def test_minimize_with_only_unused_variable_raises_value_error():
    tf.Variable(1.0, name="unused")
    x = tf.constant(3.0)
    with pytest.raises(ValueError, match="[Nn]o gradients"):
        tf.train.GradientDescentOptimizer(0.1).minimize(x * x)


def test_minimize_through_stop_gradient_raises_value_error():
    w = tf.Variable(2.0, name="w")
    loss = tf.stop_gradient(w) * 3.0
    with pytest.raises(ValueError, match="[Nn]o gradients"):
        tf.train.AdamOptimizer().minimize(loss)


def test_minimize_with_no_variables_raises_value_error():
    with pytest.raises(ValueError):
        tf.train.GradientDescentOptimizer(0.1).minimize(tf.constant(1.0) * 2.0)


def test_apply_gradients_with_only_none_gradients_raises_value_error():
    w = tf.Variable(2.0, name="w")
    with pytest.raises(ValueError):
        tf.train.GradientDescentOptimizer(0.1).apply_gradients([(None, w)])


def test_minimize_skips_variable_without_gradient():
    W, b, loss = _build_problem(tf.float64, np.float64)
    unused = tf.Variable([5.0, 6.0], dtype=tf.float64, name="unused")
    opt = tf.train.RMSPropOptimizer(0.03125)
    train_op = opt.minimize(loss)
    assert opt.get_slot(unused, "rms") is None
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        np.testing.assert_array_equal(sess.run(unused), [5.0, 6.0])
        assert not np.allclose(sess.run(W), W0)


def test_learning_rate_as_tensor_and_callable():
    W1 = tf.Variable([1.0, 2.0], dtype=tf.float64, name="W1")
    W2 = tf.Variable([1.0, 2.0], dtype=tf.float64, name="W2")
    op1 = tf.train.GradientDescentOptimizer(tf.constant(0.25)).minimize(
        tf.reduce_sum(tf.square(W1)), var_list=[W1])
    op2 = tf.train.GradientDescentOptimizer(lambda: 0.125).minimize(
        tf.reduce_sum(tf.square(W2)), var_list=[W2])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([op1, op2])
        np.testing.assert_allclose(sess.run(W1), [0.5, 1.0], rtol=1e-12)
        np.testing.assert_allclose(sess.run(W2), [0.75, 1.5], rtol=1e-12)


def test_one_optimizer_reused_for_two_minimize_calls_shares_slots():
    W, b, loss = _build_problem(tf.float64, np.float64)
    opt = tf.train.MomentumOptimizer(0.0625, 0.5)
    op1 = opt.minimize(loss, var_list=[W])
    slot = opt.get_slot(W, "momentum")
    op2 = opt.minimize(loss, var_list=[W])
    assert opt.get_slot(W, "momentum") is slot
    assert [v.name for v in opt.variables()] == ["W/Momentum:0"]
    g = _ref_grads(np.float64, W0, B0)["W"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(op1)
        W1 = W0 - 0.0625 * g
        np.testing.assert_allclose(sess.run(W), W1, rtol=1e-12)
        sess.run(op2)
        accum = 0.5 * g + _ref_grads(np.float64, W1, B0)["W"]
        np.testing.assert_allclose(sess.run(slot), accum, rtol=1e-12)
        np.testing.assert_allclose(sess.run(W), W1 - 0.0625 * accum, rtol=1e-12)


def test_two_adam_optimizers_in_one_graph():
    W, b, loss = _build_problem(tf.float64, np.float64)
    opt_w, opt_b = tf.train.AdamOptimizer(0.0625), tf.train.AdamOptimizer(0.03125)
    train_op = tf.group(opt_w.minimize(loss, var_list=[W]), opt_b.minimize(loss, var_list=[b]))
    names = [v.name for v in tf.global_variables()]
    assert len(names) == len(set(names))
    f32 = lambda v: float(np.float32(v))  # noqa: E731 - TF1 rounds Python floats to float32
    ref_w = RefAdam(0.0625, f32(0.9), f32(0.999), f32(1e-8))
    ref_b = RefAdam(0.03125, f32(0.9), f32(0.999), f32(1e-8))
    Wv, bv = W0.copy(), B0.copy()
    sw, sb = {"m": 0.0, "v": 0.0}, {"m": 0.0, "v": 0.0}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t in range(1, 4):
            g = _ref_grads(np.float64, Wv, bv)
            ref_w.begin(t)
            ref_b.begin(t)
            Wv, bv = ref_w.apply(Wv, g["W"], sw), ref_b.apply(bv, g["b"], sb)
            ref_w.end()
            ref_b.end()
            sess.run(train_op)
            # The m slots do not depend on the float32 rounding of the hyper-parameters
            # at the 1e-6 level; the variables move by ~lr per step.
            np.testing.assert_allclose(sess.run(W), Wv, rtol=1e-6)
            np.testing.assert_allclose(sess.run(b), bv, rtol=1e-6)
            np.testing.assert_allclose(sess.run(opt_w.get_slot(W, "m")), sw["m"], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# exponential_decay
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_values_via_load(staircase):
    gs = tf.train.get_or_create_global_step()
    lr = tf.train.exponential_decay(0.1, gs, decay_steps=10, decay_rate=0.5,
                                    staircase=staircase)
    assert lr.dtype is tf.float32
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in [0, 1, 5, 9, 10, 11, 15, 25, 37, 100]:
            gs.load(step, sess)
            exponent = (step // 10) if staircase else step / 10.0
            np.testing.assert_allclose(sess.run(lr), 0.1 * 0.5 ** exponent, rtol=1e-6,
                                       err_msg=f"global_step={step}")


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_values_via_assign(staircase):
    step_var = tf.Variable(0, dtype=tf.int64, name="my_step", trainable=False)
    new_step = tf.placeholder(tf.int64, [])
    assign = step_var.assign(new_step)
    lr = tf.train.exponential_decay(0.01, step_var, 100000, 0.96, staircase=staircase)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in [0, 99999, 100000, 150000, 250001, 1234567]:
            sess.run(assign, {new_step: step})
            exponent = (step // 100000) if staircase else step / 100000.0
            np.testing.assert_allclose(sess.run(lr), 0.01 * 0.96 ** exponent, rtol=1e-6,
                                       err_msg=f"global_step={step}")


def test_exponential_decay_drives_training_with_global_step():
    # TF1: the decayed rate of step t is computed from the global step before its increment.
    W, b, loss = _build_problem(tf.float64, np.float64)
    gs = tf.train.get_or_create_global_step()
    lr = tf.train.exponential_decay(0.25, gs, decay_steps=2, decay_rate=0.5, staircase=True)
    train_op = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=gs)
    Wv, bv = W0.copy(), B0.copy()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t in range(STEPS):
            rate = 0.25 * 0.5 ** (t // 2)
            np.testing.assert_allclose(sess.run(lr), rate, rtol=1e-7)
            sess.run(train_op)
            g = _ref_grads(np.float64, Wv, bv)
            Wv, bv = Wv - rate * g["W"], bv - rate * g["b"]
            np.testing.assert_allclose(sess.run(W), Wv, rtol=1e-6)
            np.testing.assert_allclose(sess.run(b), bv, rtol=1e-6)
        assert sess.run(gs) == STEPS


def test_exponential_decay_requires_global_step():
    with pytest.raises(ValueError):
        tf.train.exponential_decay(0.1, None, 10, 0.5)


# ---------------------------------------------------------------------------------------------
# details where TF1 is easy to get wrong (bugs found, and fixed, while writing these tests)
# ---------------------------------------------------------------------------------------------
def test_rmsprop_centered_slot_variable_names_follow_tf1_creation_order():
    W, b, loss = _build_problem(tf.float32, np.float32)
    opt = tf.train.RMSPropOptimizer(0.1, centered=True)
    opt.minimize(loss)
    assert opt.get_slot(W, "rms").name == "W/RMSProp:0"
    assert opt.get_slot(W, "mg").name == "W/RMSProp_1:0"
    assert opt.get_slot(W, "momentum").name == "W/RMSProp_2:0"


def test_rmsprop_uncentered_and_adam_slot_variable_names():
    W, b, loss = _build_problem(tf.float32, np.float32)
    rms = tf.train.RMSPropOptimizer(0.1)
    rms.minimize(loss)
    assert rms.get_slot(W, "rms").name == "W/RMSProp:0"
    assert rms.get_slot(W, "momentum").name == "W/RMSProp_1:0"
    adam = tf.train.AdamOptimizer()
    adam.minimize(loss)
    assert adam.get_slot(b, "m").name == "b/Adam:0"
    assert adam.get_slot(b, "v").name == "b/Adam_1:0"
    ada = tf.train.AdadeltaOptimizer()
    ada.minimize(loss)
    assert ada.get_slot(W, "accum").name == "W/Adadelta:0"
    assert ada.get_slot(W, "accum_update").name == "W/Adadelta_1:0"


def test_float64_variables_use_float32_rounded_python_hyperparameters_like_tf1():
    W = tf.Variable(np.ones(3), dtype=tf.float64, name="W")
    g = np.array([1.0, 2.0, 3.0])
    opt = tf.train.AdamOptimizer()  # beta2 = 0.999
    train_op = opt.apply_gradients([(tf.constant(g, dtype=tf.float64), W)])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        beta2 = float(np.float32(0.999))
        np.testing.assert_allclose(sess.run(opt.get_slot(W, "v")), (1 - beta2) * g * g,
                                   rtol=1e-9)
