#!/usr/bin/env bash
# The CUDA backend on a machine with an NVIDIA GPU, in one call (NOT RUN YET: no GPU was
# available when it was written). From the repository root:
#
#     PYCUDA_SDIST=shared/pycuda-2025.1.tar.gz benchmarks/gpu_check.sh [OUT_DIR]
#
# 1. installs pycuda into the venv (from PYCUDA_SDIST when the machine has no network; it
#    builds against the CUDA toolkit under CUDA_HOME, default /usr/local/cuda);
# 2. says what the driver sees (GPU, compute capability);
# 3. runs the CUDA backend's tests (tests/test_cuda_backend.py: the GPU-run tests no longer
#    skip), then the whole suite with FLOWJIT_BACKEND=cuda;
# 4. times the GPU benchmarks: a fused elementwise chain against a device-to-device copy of
#    the same bytes (bandwidth), and the MLP's training step (runs per second).
# Everything goes to OUT_DIR (default gpu_check_out/): one log per part, summary.txt.
set -u
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$CUDA_HOME/bin:$PATH"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

if ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
    if [ -n "${PYCUDA_SDIST:-}" ]; then
        "$PY" -m pip install --no-build-isolation "$PYCUDA_SDIST" > "$OUT/pip.log" 2>&1
    else
        "$PY" -m pip install 'pycuda>=2024.1' > "$OUT/pip.log" 2>&1
    fi
    note "pip install pycuda: exit $?"
fi

"$PY" - > "$OUT/device.log" 2>&1 <<'EOF'
from flowjit.runtime import cuda
reason = cuda.unavailable_reason()
print("unavailable:", reason)
if reason is None:
    device = cuda.device()
    gpu = device.driver.gpu
    print("gpu:", gpu.name(), "compute capability", gpu.compute_capability())
    print("limits:", device.driver.limits)
EOF
note "device: $(tr '\n' ' ' < "$OUT/device.log")"

timeout 900 "$PY" -m pytest -n 0 -q -rs tests/test_cuda_backend.py > "$OUT/test_cuda_backend.log" 2>&1
note "tests/test_cuda_backend.py: exit $? ($(tail -1 "$OUT/test_cuda_backend.log"))"

FLOWJIT_BACKEND=cuda timeout 3600 "$PY" -m pytest -n 4 -q -x --maxfail=20 tests \
    > "$OUT/suite_cuda.log" 2>&1
note "whole suite, FLOWJIT_BACKEND=cuda: exit $? ($(tail -1 "$OUT/suite_cuda.log"))"

timeout 900 "$PY" - > "$OUT/benchmarks.log" 2>&1 <<'EOF'
"""Fused chain vs device-to-device copy; the MLP training step. Times on the GPU."""
import time
import numpy as np
import flowjit as tf
from flowjit.runtime import cuda

def per_run(fn, runs):
    fn()
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs

n = 1 << 24  # 64 MB of float32
tf.reset_default_graph()
v = tf.Variable(np.ones(n, np.float32))
chain = tf.assign(v, tf.nn.relu(1.5 * v + 0.25) * tf.sigmoid(v) - 0.5 * tf.tanh(v))
with tf.Session(backend="cuda") as sess:
    sess.run(v.initializer)
    seconds = per_run(lambda: sess.run(chain.op), 50)  # (no fetch: nothing leaves the GPU)
    print(f"fused chain over {n} floats, in place: {seconds * 1e3:.3f} ms/run, "
          f"{2 * 4 * n / seconds / 1e9:.1f} GB/s (read + write)")
device = cuda.device()
driver = device.driver
(a, pa), (b, pb) = device.take(4 * n), device.take(4 * n)
def copy():
    driver.copy(pb, pa, 4 * n)
    driver.synchronize()
seconds = per_run(copy, 50)
print(f"device-to-device copy of {4 * n} bytes: {seconds * 1e3:.3f} ms, "
      f"{2 * 4 * n / seconds / 1e9:.1f} GB/s (read + write)")

tf.reset_default_graph()
tf.set_random_seed(0)
x = tf.placeholder(tf.float32, [256, 784])
y = tf.placeholder(tf.int64, [256])
h = tf.layers.dense(tf.layers.dense(x, 256, tf.nn.relu), 128, tf.nn.relu)
loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
    labels=y, logits=tf.layers.dense(h, 10)))
train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
feeds = {x: np.random.rand(256, 784).astype(np.float32), y: np.random.randint(0, 10, 256)}
for backend in ("llvm", "cuda"):
    with tf.Session(backend=backend) as sess:
        sess.run(tf.global_variables_initializer())
        seconds = per_run(lambda: sess.run([loss, train], feeds), 100)
        print(f"MLP 784-256-128-10 training step, batch 256, {backend}: "
              f"{seconds * 1e3:.3f} ms/step")
print("device counters:", device.counters)
EOF
note "benchmarks: exit $?"
cat "$OUT/benchmarks.log" >> "$summary"
cat "$summary"
