"""The CUDA backend's driver: pycuda, imported here and only when a Session asks for a GPU.

One driver per process: the first GPU's primary context (pushed around each call of the
driver, popped after it), one stream that every copy and launch goes to, in order. Kernels
come from the executable's PTX module (`module_from_buffer`: the driver JIT-compiles it for
the GPU) and are called as prepared functions (one pointer per buffer). Copies to and from
the host go through pinned staging buffers (`PinnedStaging`): a buffer an asynchronous copy
reads is not handed out again before the stream is synchronized. A plan whose launches are
a fixed sequence runs them as a CUDA graph: captured from the stream once per set of buffer
addresses, then replayed (one launch per run).

NOT RUN ON A GPU: this module was written against pycuda's documented API (driver.Stream's
begin_capture/end_capture, Graph.instantiate, GraphExec.launch; prepared_async_call) and
checked only by reading; benchmarks/gpu_check.sh runs it on a GPU.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from flowjit.runtime.device_plan import DeviceLimits

STAGING_LIMIT_BYTES = 256 << 20  # pinned host memory kept for staging, at most


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> Optional[str]:
    """None if pycuda, a CUDA driver and a GPU are all here; else which one is missing."""
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        return f"pycuda is not installed ({e})"
    except Exception as e:  # (a pycuda built against another CUDA: its library fails to load)
        return f"pycuda cannot be loaded ({type(e).__name__}: {e})"
    try:
        cuda.init()
    except Exception as e:
        return f"no CUDA driver could be initialized ({type(e).__name__}: {e})"
    if cuda.Device.count() == 0:
        return "the CUDA driver sees no GPU"
    return None


class PinnedStaging:
    """Pinned host buffers for the stream's asynchronous copies, reused by size.

    The stream may lag the host arbitrarily, so a buffer an enqueued copy reads is *in
    flight* until the stream is synchronized: `take` never hands it out before then, and
    `landed` (called after a synchronize) makes every in-flight buffer free again. At most
    `limit` bytes stay pinned: past it, free buffers are unpinned first, then `synchronize`
    is called to land the in-flight ones; a copy larger than the limit gets a buffer of its
    own, dropped when it lands. `lock` is held by whoever takes a buffer until its copy is
    enqueued, and around a synchronize and `landed`, so no buffer lands before its copy is
    on the stream."""

    def __init__(self, allocate: Callable[[int], np.ndarray], synchronize: Callable[[], None],
                 limit: int = STAGING_LIMIT_BYTES) -> None:
        self.allocate, self.synchronize, self.limit = allocate, synchronize, limit
        self.lock = threading.RLock()
        self.free: Dict[int, List[np.ndarray]] = {}  # capacity -> buffers
        self.in_flight: List[np.ndarray] = []
        self.pinned = 0  # bytes of every buffer: free, in flight or taken

    def take(self, nbytes: int) -> np.ndarray:
        """A buffer of at least `nbytes` that no pending copy reads (call with `lock` held,
        and `fly` or `give` it afterwards)."""
        capacity = max(1, nbytes)
        buffers = self.free.get(capacity)
        if not buffers and self.pinned + capacity > self.limit:
            self._unpin_free()
            if self.in_flight and self.pinned + capacity > self.limit:
                self.synchronize()
                self.landed()
                self._unpin_free()
            buffers = self.free.get(capacity)
        if buffers:
            return buffers.pop()
        self.pinned += capacity
        return self.allocate(capacity)

    def fly(self, buffer: np.ndarray) -> None:
        """`buffer` is read by a copy just enqueued: it is not reused before `landed`."""
        self.in_flight.append(buffer)

    def give(self, buffer: np.ndarray) -> None:
        """A buffer no pending copy uses is free again (or unpinned, past the limit)."""
        if self.pinned > self.limit:
            self.pinned -= buffer.nbytes
        else:
            self.free.setdefault(buffer.nbytes, []).append(buffer)

    def landed(self) -> None:
        """The stream was synchronized (with `lock` held since the last `fly`): every copy
        enqueued has run."""
        flown, self.in_flight = self.in_flight, []
        for buffer in flown:
            self.give(buffer)

    def _unpin_free(self) -> None:
        for buffers in self.free.values():
            self.pinned -= sum(b.nbytes for b in buffers)
        self.free.clear()


class PyCUDADriver:
    """What DeviceExecutable asks of a GPU, done with pycuda (see the module's docstring)."""

    def __init__(self, ordinal: int = 0) -> None:
        import pycuda.driver as cuda
        self.cuda = cuda
        cuda.init()
        self.gpu = cuda.Device(ordinal)
        # The primary context, retained once and never made current for longer than one
        # call of this driver: `_current` pushes it and pops it, in whichever thread calls.
        # pycuda aborts the process at exit if a context is left on a thread's stack
        # ("The context stack was not empty upon module cleanup"), and a per-thread push
        # cannot be popped from an atexit hook (the stack is per thread; pycuda.autoprimaryctx
        # pushes once, in the importing thread, and pops at exit). It is not released: the
        # allocations the process's Device keeps until exit belong to it.
        self.context = self.gpu.retain_primary_context()
        attribute = cuda.device_attribute
        get = self.gpu.get_attribute

        def optional(name: str, default: int) -> int:
            return get(getattr(attribute, name)) if hasattr(attribute, name) else default

        self.limits = DeviceLimits(
            sm_count=get(attribute.MULTIPROCESSOR_COUNT),
            max_threads_per_sm=get(attribute.MAX_THREADS_PER_MULTIPROCESSOR),
            max_blocks_per_sm=optional("MAX_BLOCKS_PER_MULTIPROCESSOR", 16),
            registers_per_sm=get(attribute.MAX_REGISTERS_PER_MULTIPROCESSOR),
            shared_bytes_per_sm=optional("MAX_SHARED_MEMORY_PER_MULTIPROCESSOR", 48 << 10),
            max_threads_per_block=get(attribute.MAX_THREADS_PER_BLOCK))
        with self._current():
            self.stream = cuda.Stream()
        self._staging = PinnedStaging(lambda n: cuda.pagelocked_empty(n, np.uint8),
                                      self._synchronize_stream)
        self._modules: List[object] = []  # loaded modules: alive as long as the driver

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        """The context is current in the calling thread for the duration (and only then)."""
        self.context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    # -- memory ---------------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> Tuple[object, int]:
        with self._current():
            allocation = self.cuda.mem_alloc(max(1, nbytes))
        return allocation, int(allocation)

    def free(self, allocation, address: int) -> None:
        with self._current():
            allocation.free()

    def to_device(self, address: int, array: np.ndarray) -> None:
        """Host -> device through a pinned staging buffer (asynchronous: the stream orders it
        before later launches; the buffer stays in flight until the next `synchronize`)."""
        staging = self._staging
        with self._current(), staging.lock:
            buffer = staging.take(array.nbytes)
            buffer[:array.nbytes] = array.reshape(-1).view(np.uint8)
            self.cuda.memcpy_htod_async(address, buffer[:array.nbytes], self.stream)
            staging.fly(buffer)

    def to_host(self, address: int, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        out = np.empty(shape, dtype)
        if not out.nbytes:
            return out
        staging = self._staging
        with self._current():
            with staging.lock:
                buffer = staging.take(out.nbytes)
                self.cuda.memcpy_dtoh_async(buffer[:out.nbytes], address, self.stream)
            try:
                self.synchronize()
                out.reshape(-1).view(np.uint8)[:] = buffer[:out.nbytes]
            finally:
                with staging.lock:
                    staging.give(buffer)
        return out

    def copy(self, destination: int, source: int, nbytes: int) -> None:
        if nbytes:
            with self._current():
                self.cuda.memcpy_dtod_async(destination, source, nbytes, self.stream)

    def synchronize(self) -> None:
        """Waits for the stream; its copies' staging buffers are free again."""
        with self._current(), self._staging.lock:
            self._synchronize_stream()
            self._staging.landed()

    def _synchronize_stream(self) -> None:
        self.stream.synchronize()

    # -- kernels --------------------------------------------------------------------------------
    def load(self, plan) -> Dict[str, object]:
        """The plan's kernels: its PTX module loaded (JIT-compiled by the driver), each entry
        prepared with one pointer argument per buffer."""
        with self._current():
            module = self.cuda.module_from_buffer(plan.ptx().encode())
            self._modules.append(module)
            functions = {}
            for step in plan.launches:
                function = module.get_function(step.kernel)
                function.prepare("P" * len(step.buffers))
                functions[step.kernel] = function
        return functions

    def registers(self, function) -> int:
        return int(function.num_regs)

    def launch(self, function, grid: int, block: int, shared_bytes: int,
               pointers: Sequence[int]) -> None:
        """(Static shared memory is the kernel's own: no dynamic shared memory.)"""
        with self._current():
            function.prepared_async_call((grid, 1), (block, 1, 1), self.stream, *pointers)

    def capture(self, sequence) -> object:
        """A CUDA graph of the launches (function, grid, block, shared, pointers), captured
        from the stream and instantiated. A launch that fails ends the capture and its own
        error is raised (not end_capture's, which then reports an invalidated capture)."""
        with self._current():
            self.synchronize()
            self.stream.begin_capture()
            try:
                for function, grid, block, shared, pointers in sequence:
                    self.launch(function, grid, block, shared, pointers)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.stream.end_capture()
                raise
            graph = self.stream.end_capture()
            return graph.instantiate()

    def replay(self, graph) -> None:
        with self._current():
            graph.launch(self.stream)
