"""The process-wide life of native code: one CPU target per process however many threads
start at once, forks that never inherit a held lock, disk cache entries bound to their key,
and compiled code freed when no executable uses it any more.

Tests that can crash or hang the process run their scenario in a fresh interpreter, so a
crash is a failed test, not a dead test runner."""
import os
import subprocess
import sys
import textwrap

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def run_fresh(code: str, cache_dir, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (llvm backend, its own disk cache)."""
    env = dict(os.environ, PYTHONPATH=SRC, FLOWJIT_BACKEND="llvm",
               FLOWJIT_CACHE_DIR=str(cache_dir))
    try:
        return subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                               textwrap.dedent(code)],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the fresh process hung for {timeout} s:\n{e.stdout}\n{e.stderr}")


FIRST_RUNS_AT_ONCE = """
    import threading
    import numpy as np
    import flowjit as tf

    x = tf.placeholder(tf.float32, [8, 16])
    y = tf.matmul(x, tf.constant(np.ones((16, 4), np.float32)))
    start = threading.Barrier(6)
    results = []

    def first_run():
        with tf.Session() as sess:
            start.wait()
            results.append(float(sess.run(y, {x: np.ones((8, 16), np.float32)}).sum()))

    threads = [threading.Thread(target=first_run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(results)
"""


def test_threads_making_their_first_run_at_once_do_not_crash(tmp_path):
    for trial in range(3):  # the first compiles, the next load the kernels from disk
        done = run_fresh(FIRST_RUNS_AT_ONCE, tmp_path)
        assert done.returncode == 0, f"trial {trial}: exit {done.returncode}\n{done.stderr}"
        assert done.stdout.strip() == str([8.0 * 16 * 4] * 6)
