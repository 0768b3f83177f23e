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


FORK_DURING_COMPILES = """
    import os, threading, time
    import numpy as np
    import flowjit as tf

    x = tf.placeholder(tf.float32, [None])
    y = tf.tanh(x) * 2.0 + 1.0
    sess = tf.Session()
    sess.run(y, {x: np.zeros(1, np.float32)})
    stop = threading.Event()

    def compile_forever():  # a new shape each time: a compile in the Session and in LLVM
        size = 2
        while not stop.is_set():
            sess.run(y, {x: np.zeros(size, np.float32)})
            size += 1

    compiler = threading.Thread(target=compile_forever)
    compiler.start()
    for fork in range(8):
        time.sleep(0.02)
        pid = os.fork()
        if pid == 0:  # the child: its first compile, in the Session the thread was using
            got = sess.run(y, {x: np.full(100000 + fork, 0.5, np.float32)})
            os._exit(0 if np.allclose(got, np.tanh(0.5) * 2 + 1) else 3)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                print(f"child {fork} hung")
                os._exit(1)
            time.sleep(0.005)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"child {fork} exited with {os.waitstatus_to_exitcode(status)}")
            os._exit(1)
    stop.set()
    compiler.join()
    print("ok")
"""


def test_a_child_forked_while_another_thread_compiles_compiles_and_runs(tmp_path):
    done = run_fresh(FORK_DURING_COMPILES, "off", timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def _in_forked_child(child_work, timeout: float = 30) -> int:
    """Runs `child_work()` in a forked child; its exit code (1 if it raised; the test fails
    if it did not finish in `timeout` seconds)."""
    import time
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child_work()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.005)


def test_a_fork_waits_for_a_compile_and_the_child_finds_every_lock_free():
    import threading
    import time
    import numpy as np
    import flowjit as tf
    from flowjit.codegen.target import cpu_target
    from flowjit.runtime import threads
    x = tf.placeholder(tf.float32, [None])
    y = tf.exp(x) - 1.0
    sess = tf.Session(backend="llvm")
    sess.run(y, {x: np.zeros(3, np.float32)})
    target = cpu_target()
    holding, release = threading.Event(), threading.Event()

    graph = tf.get_default_graph()

    def hold_the_session_and_pool_locks():  # as threads building, compiling, running would
        with sess._compile_lock, sess._cache_lock, sess._lock, threads._pool_lock, \
                graph._lock:
            holding.set()
            release.wait(30)

    def compile_for_a_while():  # a compile in flight: the fork waits for its end
        with target._lock:
            holding.set()
            time.sleep(0.2)

    holders = [threading.Thread(target=hold_the_session_and_pool_locks),
               threading.Thread(target=compile_for_a_while)]
    for holder in holders:
        holding.clear()
        holder.start()
        holding.wait(10)

    def child():  # a new op, and a new shape: a compile in the Session and in LLVM
        got = sess.run(y * 2.0, {x: np.full(7, 0.5, np.float32)})
        assert np.allclose(got, np.expm1(0.5) * 2)
        assert threads._pool_lock.acquire(timeout=1)

    try:
        assert _in_forked_child(child) == 0
    finally:
        release.set()
        for holder in holders:
            holder.join()


def _constant_function(target, constant: int, marker: str) -> int:
    """Compiles `i64 value() { return constant }` (new to this process) and calls it."""
    import ctypes
    text = f"; {marker}\ndefine i64 @value() {{\n  ret i64 {constant}\n}}\n"
    module = target.compile_ir_text(text, "value")
    return ctypes.CFUNCTYPE(ctypes.c_int64)(module.address("value"))()


def test_a_disk_cache_entry_filed_under_another_key_is_rebuilt_not_loaded(tmp_path,
                                                                          monkeypatch):
    import shutil
    from flowjit.codegen.target import DiskCache, cpu_target
    target = cpu_target()
    monkeypatch.setattr(target, "_disk", DiskCache(str(tmp_path)))
    kernels = tmp_path / "kernels"
    assert _constant_function(target, 1, str(tmp_path)) == 1
    (one,) = kernels.iterdir()
    assert _constant_function(target, 2, str(tmp_path)) == 2
    (two,) = set(kernels.iterdir()) - {one}
    shutil.copyfile(one, two)  # a valid entry, under another key's name
    assert target._disk.load(two.stem) is None
    target._cache.clear()  # the next compile looks on disk
    assert _constant_function(target, 2, str(tmp_path)) == 2
    assert two.read_bytes() != one.read_bytes()  # rebuilt and stored again


def test_a_store_that_fails_on_a_full_disk_leaves_no_temporary_and_still_trims(tmp_path,
                                                                               monkeypatch):
    import errno
    import time
    from flowjit.codegen.target import DiskCache
    cache = DiskCache(str(tmp_path))
    kernels = tmp_path / "kernels"
    for i in range(6):
        cache.store(f"k{i}", bytes(900))
        os.utime(kernels / f"k{i}.o", (time.time() - 100 + i,) * 2)
    cache.max_bytes = 3000  # now over its limit: the next store must free space
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd, *args, **kwargs):
            self.file = real_fdopen(fd, *args, **kwargs)

        def write(self, data):
            self.file.write(data[:100])  # a part fits, then the disk is full
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", FullDisk)
        cache.store("k6", bytes(900))
    left = sorted(p.name for p in kernels.iterdir())
    assert not [name for name in left if name.endswith(".tmp")], left
    assert sum(p.stat().st_size for p in kernels.iterdir()) <= 3000
    assert "k5.o" in left and "k0.o" not in left  # the oldest went first


def test_a_dead_writers_temporary_file_is_removed_and_a_live_one_kept(tmp_path):
    import time
    from flowjit.codegen.target import DiskCache
    cache = DiskCache(str(tmp_path))
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    dead, live = kernels / "dead.tmp", kernels / "live.tmp"
    dead.write_bytes(bytes(100))
    os.utime(dead, (time.time() - 7200,) * 2)  # its writer died two hours ago
    live.write_bytes(bytes(100))  # being written now
    cache.store("k", b"object")
    assert not dead.exists() and live.exists() and cache.load("k") == b"object"


def _live_compiled_modules() -> int:
    import gc
    from flowjit.codegen.target import CompiledModule
    gc.collect()
    return sum(isinstance(o, CompiledModule) for o in gc.get_objects())


def test_executables_evicted_or_closed_free_their_compiled_code(monkeypatch):
    import warnings
    import numpy as np
    import flowjit as tf
    from flowjit.config import config
    monkeypatch.setattr(config, "cache_size", 4)
    x = tf.placeholder(tf.float32, [None, 8])
    w = tf.constant(np.eye(8, dtype=np.float32) * 0.5)
    y = tf.matmul(tf.nn.relu(tf.matmul(x, w) + 1.0), w)  # a segment, per batch size, of
    expected = (0.5 * 0.5 + 1.0) * 0.5                   # kernels calling the GEMM core
    with tf.Session(backend="llvm") as first:  # starts what lives for ever: the GEMM
        first.run(y, {x: np.ones((100, 8), np.float32)})  # core, the worker pool
    before = _live_compiled_modules()
    sess = tf.Session(backend="llvm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "compiled N times": meant here
        for batch in range(1, 25):
            got = sess.run(y, {x: np.full((batch, 8), 0.5, np.float32)})
            np.testing.assert_allclose(got, expected, rtol=1e-6)
    # only the cache_size executables the Session keeps hold their code
    assert _live_compiled_modules() - before <= 4
    sess.close()
    assert _live_compiled_modules() <= before
    with tf.Session(backend="llvm") as again:  # the GEMM core its kernels call is still there
        got = again.run(y, {x: np.full((3, 8), 0.5, np.float32)})
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _malloc_in_use() -> int:
    """Bytes malloc has handed out and not had back (glibc's mallinfo2)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        pytest.skip("no glibc mallinfo2 here")
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd


def test_optimizing_modules_does_not_grow_native_memory():
    import gc
    import llvmlite.binding as llvm
    from flowjit.codegen.target import cpu_target
    target = cpu_target()
    text = """
        define void @scale(ptr %p, i64 %n) {
        entry:
          br label %loop
        loop:
          %i = phi i64 [0, %entry], [%next, %loop]
          %q = getelementptr float, ptr %p, i64 %i
          %v = load float, ptr %q
          %w = fmul float %v, 2.0
          store float %w, ptr %q
          %next = add i64 %i, 1
          %more = icmp ult i64 %next, %n
          br i1 %more, label %loop, label %exit
        exit:
          ret void
        }
    """

    def optimize_some(times: int) -> None:
        for _ in range(times):
            target.optimize(llvm.parse_assembly(text))
        gc.collect()

    optimize_some(10)  # LLVM's one-time allocations
    before = _malloc_in_use()
    optimize_some(100)
    per_module = (_malloc_in_use() - before) / 100
    assert per_module < 8 << 10, f"{per_module / 1024:.1f} KiB kept per optimized module"


def test_the_pool_shuts_down_at_exit_while_another_thread_drives_it(tmp_path):
    # At exit (or in a child forked while a kernel ran split) the pool may still be owned
    # by a thread that is not coming back; shutting down must not call into nothing.
    done = run_fresh("""
        from flowjit.codegen.target import cpu_target
        from flowjit.runtime import threads
        pool = threads.worker_pool(cpu_target())
        if pool is not None:
            pool._words[threads.OWNER] = 1
            pool.shutdown()
        print("ok")
    """, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_session_closed_during_a_compile_keeps_no_executable():
    import numpy as np
    import flowjit as tf
    x = tf.placeholder(tf.float32, [3])
    y = x * 2.0
    sess = tf.Session(backend="llvm")
    compile_for_real = sess._compile

    def compile_while_another_thread_closes(*args):
        executable = compile_for_real(*args)
        sess.close()
        return executable

    sess._compile = compile_while_another_thread_closes
    np.testing.assert_allclose(sess.run(y, {x: np.ones(3, np.float32)}), 2.0)
    assert not sess._executables  # its code is freed with the run that needed it
