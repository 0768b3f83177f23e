"""flowjit vs numpy (and JAX jit / PyTorch eager when importable) on the backend issue's
workloads. Every figure is the median of several runs after warm-up, and is also given as a
ratio to numpy measured in the same process. Each workload runs in a fresh process (all of
its systems in that one), so that no workload inherits another's busy or sleeping threads.
The header names the CPU, the ISA flowjit generates code for and its float32 peak
(benchmarks/peak.py); GEMM rows give GFLOP/s and their percentage of that peak.

    python benchmarks/run.py [--quick] [--only NAME ...] [--threads N] [--isa host|avx2]

--threads N pins every system to N cores (sched_setaffinity) and limits their thread pools
to N (OpenBLAS, OpenMP, MKL, XLA, PyTorch; flowjit's pool follows the affinity), so that
single-core comparisons are fair on a loaded machine. --isa avx2 makes flowjit generate its
AVX2 code (a 'haswell' target) and numpy use OpenBLAS's Haswell kernels, as on an AVX2 host.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

import flowjit as tf


class Rounds:
    """The systems of one workload and their timing: per system, a warm-up (and compile),
    then `repeats` samples; a system's figure is the median sample.

    With several cores, samples are not interleaved across systems: measured on the 2-core
    benchmark VM, a thread pool that went idle (PyTorch's OpenMP threads, XLA's, flowjit's
    workers) runs the next few calls 1.5-3x slower, so interleaving mostly measures
    wake-ups. On one core (--threads 1) there are no pools to wake, and rounds of one sample
    per system spread a loaded machine's bursts over all systems alike."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.systems: Dict[str, Tuple[Callable[[], object], int]] = {}

    def add(self, name: str, fn: Callable[[], object], number: int = 1) -> None:
        self.systems[name] = (fn, number)

    def medians(self) -> Dict[str, float]:
        if _cores() > 1:
            return {name: statistics.median(_samples(fn, self.repeats, number))
                    for name, (fn, number) in self.systems.items()}
        for fn, _ in self.systems.values():
            _samples(fn, 0, 1)  # warm-ups (and compilation) first
        times: Dict[str, List[float]] = {name: [] for name in self.systems}
        for _ in range(self.repeats):
            for name, (fn, number) in self.systems.items():
                times[name] += _samples(fn, 1, number, warm_up=0)
        return {name: statistics.median(samples) for name, samples in times.items()}


def _samples(fn: Callable[[], object], repeats: int, number: int,
             warm_up: int = 3) -> List[float]:
    for _ in range(warm_up):
        fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        gc.disable()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
        gc.enable()
    return times


# -- peers (measured when importable; none is a flowjit dependency) ---------------------------
def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(_cores())
    return torch


def _cores() -> int:
    """The cores this process may run on (all of them, or --threads)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    return jax, jnp


def peers_tiny(rounds: Rounds) -> None:
    if _jax():
        jax, jnp = _jax()
        f = jax.jit(lambda a, b: a + b)
        rounds.add("jax-jit", lambda: f(4.0, 5.0).block_until_ready(),
                                     number=2000)
    torch = _torch()
    if torch:
        a, b = torch.tensor(4.0), torch.tensor(5.0)
        rounds.add("torch-eager", lambda: torch.add(a, b), number=2000)


def peers_chain(rounds: Rounds, data: np.ndarray) -> None:
    if _jax():
        jax, jnp = _jax()
        f = jax.jit(lambda x: jnp.maximum(1.5 * x + 0.25, 0) * jax.nn.sigmoid(x)
                    - 0.5 * jnp.tanh(x))
        x = jnp.asarray(data)
        rounds.add("jax-jit", lambda: f(x).block_until_ready())
    torch = _torch()
    if torch:
        tx = torch.from_numpy(data)  # (own names: the JAX closure above keeps reading x)
        rounds.add("torch-eager",
                   lambda: torch.relu(1.5 * tx + 0.25) * torch.sigmoid(tx) - 0.5 * torch.tanh(tx))


def peers_mlp(rounds: Rounds, images: np.ndarray, labels: np.ndarray,
              sizes: List[int]) -> None:
    rng = np.random.default_rng(0)
    weights = [(rng.standard_normal((m, n)).astype(np.float32) * 0.05, np.zeros(n, np.float32))
               for m, n in zip(sizes, sizes[1:])]
    if _jax():
        jax, jnp = _jax()

        def loss(params, x, y):
            h = x
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        @jax.jit
        def step(params, x, y):
            grads = jax.grad(loss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)

        state = {"params": [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]}
        x, y = jnp.asarray(images), jnp.asarray(labels)

        def jax_step():
            state["params"] = step(state["params"], x, y)
            jax.block_until_ready(state["params"])
        rounds.add("jax-jit", jax_step, number=5)
    torch = _torch()
    if torch:
        params = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
                  for w, b in weights]
        tx, ty = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))

        def torch_step():
            h = tx
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = torch.relu(h)
            loss = torch.nn.functional.cross_entropy(h, ty)
            loss.backward()
            with torch.no_grad():
                for w, b in params:
                    w -= 0.01 * w.grad
                    b -= 0.01 * b.grad
                    w.grad = None
                    b.grad = None
        rounds.add("torch-eager", torch_step, number=5)


def peers_gemm(rounds: Rounds, a: np.ndarray, b: np.ndarray) -> None:
    if _jax():
        jax, jnp = _jax()
        f = jax.jit(jnp.dot)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        rounds.add("jax-jit", lambda: f(ja, jb).block_until_ready())
    torch = _torch()
    if torch:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        rounds.add("torch-eager", lambda: torch.mm(ta, tb))


# -- workloads ----------------------------------------------------------------------------------
def tiny_run(repeats: int) -> Dict[str, float]:
    """sess.run(a + b, {a: 4., b: 5.}) per call."""
    rounds = Rounds(repeats)
    for backend in ("llvm", "eager"):
        with tf.Graph().as_default():
            a, b = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
            y = a + b
            sess = tf.Session(backend=backend)
            rounds.add(f"flowjit-{backend}",  # (defaults: bound now, not at the last loop)
                       lambda sess=sess, y=y, feed={a: 4.0, b: 5.0}: sess.run(y, feed),
                       number=2000)
    x, z = np.float32(4.0), np.float32(5.0)
    rounds.add("numpy", lambda: np.add(x, z), number=2000)
    peers_tiny(rounds)
    return rounds.medians()


def fused_chain(repeats: int, n: int) -> Dict[str, float]:
    """relu(1.5*x + 0.25) * sigmoid(x) - 0.5*tanh(x) on n float32."""
    data = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    rounds = Rounds(repeats)
    for backend in ("llvm",):
        with tf.Graph().as_default():
            x = tf.placeholder(tf.float32, [n])
            y = tf.nn.relu(1.5 * x + 0.25) * tf.sigmoid(x) - 0.5 * tf.tanh(x)
            sess = tf.Session(backend=backend)
            rounds.add(f"flowjit-{backend}", lambda: sess.run(y, {x: data}))

    def numpy_chain():
        return np.maximum(1.5 * data + 0.25, 0) * (1 / (1 + np.exp(-data))) - 0.5 * np.tanh(data)
    rounds.add("numpy", numpy_chain)
    peers_chain(rounds, data)
    return rounds.medians()


MLP = [784, 256, 128, 10]
BIG_MLP = [784, 1024, 1024, 10]


def mlp_graph(batch: int, sizes: List[int] = MLP):
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, [batch, sizes[0]])
    y = tf.placeholder(tf.int32, [batch])
    h = x
    for i, (m, n) in enumerate(zip(sizes, sizes[1:])):
        w = tf.Variable(tf.truncated_normal([m, n], stddev=0.05), name=f"W{i}")
        b = tf.Variable(tf.zeros([n]), name=f"b{i}")
        h = tf.matmul(h, w) + b
        if i < len(sizes) - 2:
            h = tf.nn.relu(h)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
    train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
    return x, y, loss, train


def numpy_mlp_step(batch: int, sizes: List[int] = MLP):
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((m, n)).astype(np.float32) * 0.05, np.zeros(n, np.float32))
              for m, n in zip(sizes, sizes[1:])]

    def step(x, y):
        acts = [x]
        for i, (w, b) in enumerate(params):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
        logits = acts[-1]
        e = np.exp(logits - logits.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        p[np.arange(batch), y] -= 1
        g = p / batch
        for i in reversed(range(len(params))):
            w, b = params[i]
            gw, gb = acts[i].T @ g, g.sum(0)
            if i:
                g = (g @ w.T) * (acts[i] > 0)
            w -= 0.01 * gw
            b -= 0.01 * gb
    return step


def mlp_train_step(repeats: int, batch: int = 128, sizes: List[int] = MLP,
                   eager: bool = True) -> Dict[str, float]:
    rng = np.random.default_rng(1)
    images = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch).astype(np.int32)
    rounds = Rounds(repeats)
    for backend in ("llvm", "eager") if eager else ("llvm",):
        with tf.Graph().as_default():
            x, y, loss, train = mlp_graph(batch, sizes)
            sess = tf.Session(backend=backend)
            sess.run(tf.global_variables_initializer())
            rounds.add(f"flowjit-{backend}",  # (defaults: bound now, not at the last loop)
                       lambda sess=sess, fetches=[loss, train], feed={x: images, y: labels}:
                       sess.run(fetches, feed), number=5)
    step = numpy_mlp_step(batch, sizes)
    rounds.add("numpy", lambda: step(images, labels), number=5)
    peers_mlp(rounds, images, labels, sizes)
    return rounds.medians()


def gemm(repeats: int, n: int = 1024) -> Dict[str, float]:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    rounds = Rounds(repeats)
    with tf.Graph().as_default():
        pa, pb = tf.placeholder(tf.float32, [n, n]), tf.placeholder(tf.float32, [n, n])
        c = tf.matmul(pa, pb)
        sess = tf.Session(backend="llvm")
        rounds.add("flowjit-llvm", lambda: sess.run(c, {pa: a, pb: b}))
    rounds.add("numpy", lambda: a @ b)
    peers_gemm(rounds, a, b)
    return rounds.medians()


REDUCTIONS = {  # name -> (flowjit graph of x, numpy, JAX (jnp, jax) and PyTorch functions)
    "row sums": (lambda x: tf.reduce_sum(x, 1), lambda x: x.sum(1),
                 lambda jnp, jax: lambda x: jnp.sum(x, 1), lambda t: lambda x: t.sum(x, 1)),
    "column sums": (lambda x: tf.reduce_sum(x, 0), lambda x: x.sum(0),
                    lambda jnp, jax: lambda x: jnp.sum(x, 0), lambda t: lambda x: t.sum(x, 0)),
    "softmax": (tf.nn.softmax,
                lambda x: (lambda e: e / e.sum(1, keepdims=True))(
                    np.exp(x - x.max(1, keepdims=True))),
                lambda jnp, jax: jax.nn.softmax, lambda t: lambda x: t.softmax(x, 1)),
}


def reduction(repeats: int, what: str, n: int = 4096) -> Dict[str, float]:
    """A reduction-heavy kernel over an n x n float32 (the kernel layer issue's rows)."""
    graph_fn, numpy_fn, jax_fn, torch_fn = REDUCTIONS[what]
    data = np.random.default_rng(3).standard_normal((n, n)).astype(np.float32)
    rounds = Rounds(repeats)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [n, n])
        y = graph_fn(x)
        sess = tf.Session()
        rounds.add("flowjit-llvm", lambda: sess.run(y, {x: data}))
    rounds.add("numpy", lambda: numpy_fn(data))
    if _jax():
        jax, jnp = _jax()
        f, jx = jax.jit(jax_fn(jnp, jax)), jnp.asarray(data)
        rounds.add("jax-jit", lambda: f(jx).block_until_ready())
    torch = _torch()
    if torch:
        g, tx = torch_fn(torch), torch.from_numpy(data)
        rounds.add("torch-eager", lambda: g(tx))
    return rounds.medians()


def cold_start() -> Dict[str, float]:
    """Build + compile + first training step of the MLP in a fresh process: with an empty
    kernel cache, then (median of 3) with the kernels on disk from the first run."""
    import tempfile
    code = ("import time; t=time.perf_counter(); import numpy as np; import flowjit as tf;"
            "import sys; sys.path.insert(0, 'benchmarks'); from run import mlp_graph;"
            "x,y,loss,train=mlp_graph(128); s=tf.Session();"
            "s.run(tf.global_variables_initializer());"
            "s.run([loss,train],{x:np.zeros((128,784),np.float32),y:np.zeros(128,np.int32)});"
            "print(time.perf_counter()-t)")
    numpy_code = ("import time; t=time.perf_counter(); import numpy as np;"
                  "print(time.perf_counter()-t)")  # the floor of any numpy-based system
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), FLOWJIT_CACHE_DIR=cache)
        # as on a user's machine, Python's own bytecode cache is on (this sandbox sets
        # PYTHONDONTWRITEBYTECODE, which recompiles every imported module in every process)
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        def once(program: str = code) -> float:
            return float(subprocess.run([sys.executable, "-c", program], capture_output=True,
                                        text=True, env=env, check=True).stdout)
        empty = once()
        warm = statistics.median(once() for _ in range(3))
        floor = statistics.median(once(numpy_code) for _ in range(3))
    return {"flowjit-llvm, empty cache": empty, "flowjit-llvm, from disk cache": warm,
            "numpy's import alone": floor}


_MEMORY_CODE = """
import sys, numpy as np


def peak_mib():  # VmHWM is this process's own peak (ru_maxrss survives fork + exec)
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
sys.path.insert(0, 'benchmarks')
from run import mlp_graph, numpy_mlp_step
steps, system = int(sys.argv[1]), sys.argv[2]
images = np.random.default_rng(0).standard_normal((128, 784)).astype(np.float32)
labels = np.zeros(128, np.int32)
if system == 'flowjit':
    import flowjit as tf
    x, y, loss, train = mlp_graph(128)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    step = lambda: sess.run([loss, train], {x: images, y: labels})
else:
    numpy_step = numpy_mlp_step(128)
    step = lambda: numpy_step(images, labels)
for i in range(steps):
    step()
    if i == 99:
        at_100 = peak_mib()
print(at_100, peak_mib())
"""


def memory(steps: int) -> Dict[str, Tuple[float, float]]:
    """Peak RSS (MiB) at step 100 and at the end of `steps` MLP training steps, each system
    in a fresh process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = {}
    for system in ("flowjit", "numpy"):
        done = subprocess.run([sys.executable, "-c", _MEMORY_CODE, str(steps), system],
                              capture_output=True, text=True, env=env, check=True)
        at_100, peak = (float(v) for v in done.stdout.split())
        out[system] = (at_100, peak)
    return out


# -- report ---------------------------------------------------------------------------------
def table(name: str, results: Dict[str, float], unit: str, scale: float,
          flops: float = 0.0, peak: float = 0.0) -> List[str]:
    """Rows of the table; with `flops` per run, also GFLOP/s and the percentage of `peak`."""
    numpy_time = results.get("numpy")
    rows = []
    for system, seconds in results.items():
        ratio = f"{numpy_time / seconds:6.2f}x numpy" if numpy_time else ""
        rate = ""
        if flops:
            rate = f" ({flops / seconds / 1e9:.0f} GFLOP/s"
            rate += f", {100 * flops / seconds / peak:.0f}% of peak)" if peak else ")"
        rows.append(f"| {name} | {system} | {seconds * scale:10.3f} {unit}{rate} | {ratio} |")
    return rows


def host_peak() -> Tuple[str, float]:
    """(description, float32 peak FLOP/s) of the cores this process runs on, for the ISA
    flowjit generates code for."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peak
    from flowjit.codegen.target import cpu_target
    measured = peak.measure(cpu_target(), _cores())
    return peak.describe(cpu_target(), _cores(), measured), measured["peak"]


# Each runs in a fresh process (a key picks the workloads whose name contains it)
WORKLOAD_KEYS = ["tiny", "chain", "(b=16)", "(b=128)", "(b=1024)", "784-1024-1024-10", "GEMM",
                 "row sums", "column sums", "softmax",
                 "cold", "memory"]
LIMITS_APPLIED = "BENCHMARK_LIMITS_APPLIED"  # set once this process runs with --threads/--isa


def _restart_with_limits(threads: int, isa: str) -> None:
    """Runs this script again, pinned to `threads` cores with every thread pool limited to
    them and the ISA forced: numpy's OpenBLAS sizes its pool when it is imported, so the
    limits must be in the environment before. Child processes inherit both."""
    env = dict(os.environ, **{LIMITS_APPLIED: "1"})
    if threads:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[variable] = str(threads)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            f" intra_op_parallelism_threads={threads}").strip()
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    if isa == "avx2":
        # (PyTorch's own kernels, its MKL and its oneDNN each have their own switch)
        env.update(FLOWJIT_CPU="haswell", FLOWJIT_CPU_FEATURES="+avx2,+fma",
                   OPENBLAS_CORETYPE="Haswell", ATEN_CPU_CAPABILITY="avx2",
                   MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def _openblas_core() -> str:
    """The kernel family numpy's OpenBLAS chose (e.g. SkylakeX, Haswell, Zen), if known."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
        for path in paths:
            library = ctypes.CDLL(path)
            for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                           "openblas_get_corename64_", "openblas_get_corename"):
                if hasattr(library, symbol):
                    getter = getattr(library, symbol)
                    getter.restype = ctypes.c_char_p
                    return getter().decode()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller chain")
    parser.add_argument("--only", nargs="*", default=None,
                        help="workloads whose name contains one of these (in this process)")
    parser.add_argument("--threads", type=int, default=0,
                        help="pin every system to this many cores and limit its threads")
    parser.add_argument("--isa", choices=["host", "avx2"], default="host",
                        help="avx2: flowjit's AVX2 code and OpenBLAS's Haswell kernels")
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peak", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if (args.threads or args.isa != "host") and os.environ.get(LIMITS_APPLIED) != "1":
        _restart_with_limits(args.threads, args.isa)
    repeats = 5 if args.quick else 7
    chain_n = 1 << 22 if args.quick else 1 << 24
    gemm_flops = 2.0 * 1024 ** 3
    workloads: List[Tuple[str, Callable[[], Dict[str, float]], str, float, float]] = [
        ("1 tiny run a+b", lambda: tiny_run(repeats), "us", 1e6, 0),
        (f"2 fused chain ({chain_n} f32)", lambda: fused_chain(repeats, chain_n), "ms", 1e3, 0),
        ("3 MLP train step (b=16)", lambda: mlp_train_step(repeats, 16, eager=False), "ms",
         1e3, 0),
        ("3 MLP train step (b=128)", lambda: mlp_train_step(repeats), "ms", 1e3, 0),
        ("3 MLP train step (b=1024)", lambda: mlp_train_step(repeats, 1024, eager=False), "ms",
         1e3, 0),
        ("3 MLP 784-1024-1024-10 train step (b=256)",
         lambda: mlp_train_step(repeats, 256, BIG_MLP, eager=False), "ms", 1e3, 0),
        ("4 GEMM 1024^3 f32", lambda: gemm(repeats), "ms", 1e3, gemm_flops),
        *[(f"4 {what} of 4096x4096 f32", lambda what=what: reduction(repeats, what), "ms",
           1e3, 0) for what in REDUCTIONS],
        ("5 cold build+compile+step", cold_start, "s", 1.0, 0),
    ]
    peak = args.peak
    if not args.rows_only:
        description, peak = host_peak()
        pinned = f" (pinned: --threads {args.threads})" if args.threads else ""
        print(f"flowjit {tf.__version__}, numpy {np.__version__} (OpenBLAS {_openblas_core()}"
              f" kernels), {_cores()} cores{pinned}; median of {repeats} runs after warm-up")
        print(f"CPU: {description}")
        print("| workload | system | time | vs numpy (same run) |")
        print("|---|---|---|---|", flush=True)
    if args.only is None:  # each workload in a fresh process: no thread pools or caches
        for key in WORKLOAD_KEYS:  # left over from the workloads before it
            command = [sys.executable, __file__, "--rows-only", "--only", key,
                       "--peak", str(peak)]
            subprocess.run(command + (["--quick"] if args.quick else []), check=True)
        return
    for name, fn, unit, scale, flops in workloads:
        if args.only and not any(o in name for o in args.only):
            continue
        if flops and not peak:
            peak = host_peak()[1]
        for row in table(name, fn(), unit, scale, flops, peak):
            print(row, flush=True)
    if not args.only or any("memory" in o for o in args.only):
        steps = 300 if args.quick else 1000
        mem = memory(steps)
        for system, (at_100, peak_rss) in mem.items():
            ratio = peak_rss / mem["numpy"][1]
            print(f"| 6 peak RSS, {steps} MLP steps | {system} | {peak_rss:.0f} MiB (step 100:"
                  f" {at_100:.0f} MiB) | {ratio:.2f}x numpy's RSS |")


if __name__ == "__main__":
    main()
