"""A persistent pool of worker threads that run shares of a native kernel, driven from native
code: `parallel_for(pool, kernel, buffers, begin, end, grain)` hands out the rows
[begin, end) in chunks of `grain` to the calling thread and the workers, and returns when all
are done.

Why native: handing work to a Python thread (ThreadPoolExecutor) costs 60-90 us per round
trip on the 2-core benchmark machine (futex wake-up, then the GIL), which is as long as a
whole 8 MFLOP matmul. Here an idle worker spins on the pool's ticket for a while (about
0.2 ms) before it sleeps on a futex, so back-to-back kernels of a training step reach a
worker in well under a microsecond, and an idle process burns no CPU.

Protocol. The ticket packs (epoch << 32 | next chunk). A new job writes its fields, resets
`completed` and publishes ticket = (epoch + 1, 0). Anyone claims chunk c by compare-exchange
(epoch, c) -> (epoch, c + 1), so a worker that wakes late, after its job ended, can never run
a chunk of the wrong job: the epoch in its expected ticket no longer matches. A job's fields
are only rewritten after all its chunks completed, and a worker reads them only after a
successful claim. The caller runs chunks too, so a job finishes even when no worker ever
wakes (a forked child has no workers). One thread drives the pool at a time; a second caller
meanwhile runs its kernel alone, on its own thread.

The pool memory is allocated once and never freed: workers may still read it while the
interpreter shuts down.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import platform
import sys
import threading
from typing import List, Optional

import llvmlite.binding as llvm

# word offsets (i64) into the pool's memory; hot words on their own cache lines
TICKET, COMPLETED, FIELDS, SLEEP, OWNER = 0, 8, 16, 24, 32
FN, ARGS, BEGIN, END, GRAIN, N_CHUNKS = range(FIELDS, FIELDS + 6)
SLEEPERS, WAKE_SEQ, SHUTDOWN = SLEEP, SLEEP + 1, SLEEP + 2
POOL_WORDS = 40

SPIN_ROUNDS = 10000  # pauses an idle worker spins before it sleeps (~0.2 ms on Zen4)
_FUTEX_SYSCALL = {"x86_64": 202, "AMD64": 202, "aarch64": 98, "arm64": 98}


def _word(index: int) -> str:
    return f"getelementptr i64, ptr %pool, i64 {index}"


def pool_ir(futex_syscall: Optional[int], has_pause: bool) -> str:
    """The pool's LLVM IR. Without a futex (not Linux) idle workers nap with usleep."""
    pause = "call void @llvm.x86.sse2.pause()" if has_pause else "fence acquire"
    if futex_syscall is not None:
        sleep = (f"call i64 (i64, ...) @syscall(i64 {futex_syscall}, ptr %seq_p, i32 128, "
                 f"i32 %seq, ptr null)")  # FUTEX_WAIT_PRIVATE while *seq_p == seq
        wake = (f"call i64 (i64, ...) @syscall(i64 {futex_syscall}, ptr %seq_p, i32 129, "
                f"i32 2147483647)")  # FUTEX_WAKE_PRIVATE, everyone
        declarations = "declare i64 @syscall(i64, ...)"
    else:
        sleep = "call i32 @usleep(i32 50)"
        wake = "add i32 0, 0"
        declarations = "declare i32 @usleep(i32)"
    if has_pause:
        declarations += "\ndeclare void @llvm.x86.sse2.pause()"
    return f"""
{declarations}

; Claims and runs chunks of job `epoch` until none is left or another job began.
define internal void @run_chunks(ptr %pool, i64 %epoch) {{
entry:
  %ticket_p = {_word(TICKET)}
  %completed_p = {_word(COMPLETED)}
  %n_p = {_word(N_CHUNKS)}
  br label %claim
claim:
  %t = load atomic i64, ptr %ticket_p acquire, align 8
  %t_epoch = lshr i64 %t, 32
  %current = icmp eq i64 %t_epoch, %epoch
  br i1 %current, label %check, label %done
check:
  %chunk = and i64 %t, 4294967295
  %n = load atomic i64, ptr %n_p monotonic, align 8
  %left = icmp ult i64 %chunk, %n
  br i1 %left, label %try, label %done
try:
  %next = add i64 %t, 1
  %pair = cmpxchg ptr %ticket_p, i64 %t, i64 %next acq_rel acquire
  %claimed = extractvalue {{ i64, i1 }} %pair, 1
  br i1 %claimed, label %work, label %claim
work:
  %fn_p = {_word(FN)}
  %fn = load atomic ptr, ptr %fn_p monotonic, align 8
  %args_p = {_word(ARGS)}
  %args = load atomic ptr, ptr %args_p monotonic, align 8
  %begin_p = {_word(BEGIN)}
  %begin = load atomic i64, ptr %begin_p monotonic, align 8
  %end_p = {_word(END)}
  %end = load atomic i64, ptr %end_p monotonic, align 8
  %grain_p = {_word(GRAIN)}
  %grain = load atomic i64, ptr %grain_p monotonic, align 8
  %skip = mul i64 %chunk, %grain
  %lo = add i64 %begin, %skip
  %hi_full = add i64 %lo, %grain
  %short = icmp slt i64 %end, %hi_full
  %hi = select i1 %short, i64 %end, i64 %hi_full
  call void %fn(ptr %args, i64 %lo, i64 %hi)
  %ignored = atomicrmw add ptr %completed_p, i64 1 release
  br label %claim
done:
  ret void
}}

; A worker thread's whole life: wait for a new epoch, help with it, repeat.
define void @flowjit_pool_worker(ptr %pool) {{
entry:
  %ticket_p = {_word(TICKET)}
  %sleepers_p = {_word(SLEEPERS)}
  %seq_p = {_word(WAKE_SEQ)}
  %shutdown_p = {_word(SHUTDOWN)}
  %t0 = load atomic i64, ptr %ticket_p acquire, align 8
  %e0 = lshr i64 %t0, 32
  br label %idle
idle:
  %seen = phi i64 [ %e0, %entry ], [ %e, %run ]
  br label %spin
spin:
  %round = phi i32 [ 0, %idle ], [ %round_next, %spin_more ], [ 0, %woken ]
  %t = load atomic i64, ptr %ticket_p acquire, align 8
  %e = lshr i64 %t, 32
  %fresh = icmp ne i64 %e, %seen
  br i1 %fresh, label %run, label %stop_check
stop_check:
  %stop = load atomic i64, ptr %shutdown_p acquire, align 8
  %stopping = icmp ne i64 %stop, 0
  br i1 %stopping, label %exit, label %spin_check
spin_check:
  %round_next = add i32 %round, 1
  %spun = icmp ugt i32 %round_next, {SPIN_ROUNDS}
  br i1 %spun, label %sleep, label %spin_more
spin_more:
  {pause}
  br label %spin
sleep:
  %seq64 = load atomic i64, ptr %seq_p seq_cst, align 8
  %seq = trunc i64 %seq64 to i32
  %s1 = atomicrmw add ptr %sleepers_p, i64 1 seq_cst
  %t2 = load atomic i64, ptr %ticket_p seq_cst, align 8
  %e2 = lshr i64 %t2, 32
  %fresh2 = icmp ne i64 %e2, %seen
  %stop2 = load atomic i64, ptr %shutdown_p seq_cst, align 8
  %stopping2 = icmp ne i64 %stop2, 0
  %awake = or i1 %fresh2, %stopping2
  br i1 %awake, label %woken, label %nap
nap:
  %slept = {sleep}
  br label %woken
woken:
  %s2 = atomicrmw sub ptr %sleepers_p, i64 1 seq_cst
  br label %spin
run:
  call void @run_chunks(ptr %pool, i64 %e)
  br label %idle
exit:
  ret void
}}

; Runs fn(args, lo, hi) over [begin, end) in chunks of `grain` on this thread and the workers.
define void @flowjit_parallel_for(ptr %pool, ptr %fn, ptr %args, i64 %begin, i64 %end,
                                  i64 %grain) {{
entry:
  %owner_p = {_word(OWNER)}
  %owned = cmpxchg ptr %owner_p, i64 0, i64 1 acquire monotonic
  %mine = extractvalue {{ i64, i1 }} %owned, 1
  br i1 %mine, label %publish, label %alone
alone:
  %some = icmp slt i64 %begin, %end
  br i1 %some, label %alone_run, label %alone_done
alone_run:
  call void %fn(ptr %args, i64 %begin, i64 %end)
  br label %alone_done
alone_done:
  ret void
publish:
  %span = sub i64 %end, %begin
  %span_up = add i64 %span, %grain
  %span_up1 = sub i64 %span_up, 1
  %n = udiv i64 %span_up1, %grain
  %fn_p = {_word(FN)}
  store atomic ptr %fn, ptr %fn_p monotonic, align 8
  %args_p = {_word(ARGS)}
  store atomic ptr %args, ptr %args_p monotonic, align 8
  %begin_p = {_word(BEGIN)}
  store atomic i64 %begin, ptr %begin_p monotonic, align 8
  %end_p = {_word(END)}
  store atomic i64 %end, ptr %end_p monotonic, align 8
  %grain_p = {_word(GRAIN)}
  store atomic i64 %grain, ptr %grain_p monotonic, align 8
  %n_p = {_word(N_CHUNKS)}
  store atomic i64 %n, ptr %n_p monotonic, align 8
  %completed_p = {_word(COMPLETED)}
  store atomic i64 0, ptr %completed_p monotonic, align 8
  %ticket_p = {_word(TICKET)}
  %old = load atomic i64, ptr %ticket_p monotonic, align 8
  %old_epoch = lshr i64 %old, 32
  %epoch = add i64 %old_epoch, 1
  %epoch32 = and i64 %epoch, 4294967295
  %ticket = shl i64 %epoch32, 32
  store atomic i64 %ticket, ptr %ticket_p seq_cst, align 8
  %sleepers_p = {_word(SLEEPERS)}
  %sleepers = load atomic i64, ptr %sleepers_p seq_cst, align 8
  %asleep = icmp ne i64 %sleepers, 0
  br i1 %asleep, label %wake, label %help
wake:
  %seq_p = {_word(WAKE_SEQ)}
  %bumped = atomicrmw add ptr %seq_p, i64 1 seq_cst
  %woke = {wake}
  br label %help
help:
  call void @run_chunks(ptr %pool, i64 %epoch32)
  br label %wait
wait:
  %done = load atomic i64, ptr %completed_p acquire, align 8
  %finished = icmp uge i64 %done, %n
  br i1 %finished, label %release, label %wait_more
wait_more:
  {pause}
  br label %wait
release:
  store atomic i64 0, ptr %owner_p release, align 8
  ret void
}}
"""


class WorkerPool:
    """The process's worker threads (one fewer than the cores this process may use) and
    the native entry points that drive them."""

    def __init__(self, target, workers: int) -> None:
        machine = platform.machine()
        futex = _FUTEX_SYSCALL.get(machine) if sys.platform.startswith("linux") else None
        module = target.compile_ir_text(pool_ir(futex, machine in ("x86_64", "AMD64")),
                                        "flowjit_pool")
        self._module = module  # keeps the code alive
        self.parallel_for_address = module.address("flowjit_parallel_for")
        llvm.add_symbol("flowjit_parallel_for", self.parallel_for_address)  # for segments
        self.parallel_for = ctypes.CFUNCTYPE(
            None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
            ctypes.c_int64, ctypes.c_int64)(self.parallel_for_address)
        libc = ctypes.CDLL(None)
        libc.calloc.restype = ctypes.c_void_p
        self.memory = libc.calloc(POOL_WORDS + 8, 8)  # never freed: see the module doc
        if not self.memory:
            raise MemoryError("flowjit: cannot allocate the worker pool")
        self.memory = (self.memory + 63) // 64 * 64  # cache-line aligned
        self._words = (ctypes.c_int64 * POOL_WORDS).from_address(self.memory)
        worker = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(module.address("flowjit_pool_worker"))
        self._worker_fn = worker
        self.threads: List[threading.Thread] = []
        for i in range(workers):
            thread = threading.Thread(target=worker, args=(self.memory,), daemon=True,
                                      name=f"flowjit-worker-{i}")
            thread.start()
            self.threads.append(thread)
        self.size = workers + 1  # the calling thread works too
        atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """Stops the workers (at exit). Publishing an empty job wakes the sleeping ones,
        and every worker then sees the flag. (If another thread still drives the pool, the
        empty job runs alone: nothing is called.)"""
        self._words[SHUTDOWN] = 1
        self.parallel_for(self.memory, self.parallel_for_address, None, 0, 0, 1)
        for thread in self.threads:
            thread.join(timeout=1.0)
        self.threads = []


_pool: Optional[WorkerPool] = None
_pool_lock = threading.Lock()


def _new_lock_in_child() -> None:
    """A thread starting the pool at a fork would leave `_pool_lock` held in the child."""
    global _pool_lock
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_pool(target) -> Optional[WorkerPool]:
    """The process's pool, started on first use; None on a single core."""
    global _pool
    if _pool is None and usable_cores() > 1:
        with _pool_lock:
            if _pool is None:
                _pool = WorkerPool(target, usable_cores() - 1)
    return _pool
