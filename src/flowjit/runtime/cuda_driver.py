"""The CUDA backend's driver: pycuda, imported here and only when a Session asks for a GPU.

One driver per process: the first GPU's primary context (made current in each thread that
uses it), one stream that every copy and launch goes to, in order. Kernels come from the
executable's PTX module (`module_from_buffer`: the driver JIT-compiles it for the GPU) and
are called as prepared functions (one pointer per buffer). Copies to and from the host go
through pinned staging buffers, kept per device address and reused by every run. A plan
whose launches are a fixed sequence runs them as a CUDA graph: captured from the stream
once per set of buffer addresses, then replayed (one launch per run).

NOT RUN ON A GPU: this module was written against pycuda's documented API (driver.Stream's
begin_capture/end_capture, Graph.instantiate, GraphExec.launch; prepared_async_call) and
checked only by reading; benchmarks/gpu_check.sh runs it on a GPU.
"""
from __future__ import annotations

import functools
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit.runtime.device_plan import DeviceLimits

_STAGING_LIMIT = 256  # pinned staging buffers kept, at most


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


class PyCUDADriver:
    """What DeviceExecutable asks of a GPU, done with pycuda (see the module's docstring)."""

    def __init__(self, ordinal: int = 0) -> None:
        import pycuda.driver as cuda
        self.cuda = cuda
        cuda.init()
        self.gpu = cuda.Device(ordinal)
        self.context = self.gpu.retain_primary_context()
        self._local = threading.local()
        self._make_current()
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
        self.stream = cuda.Stream()
        self._staging: Dict[Tuple[int, int], np.ndarray] = {}
        self._modules: List[object] = []  # loaded modules: alive as long as the driver

    def _make_current(self) -> None:
        """The context is current in each thread that calls the driver (pushed once)."""
        if not getattr(self._local, "current", False):
            self.context.push()
            self._local.current = True

    # -- memory ---------------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> Tuple[object, int]:
        self._make_current()
        allocation = self.cuda.mem_alloc(max(1, nbytes))
        return allocation, int(allocation)

    def _staged(self, address: int, nbytes: int) -> np.ndarray:
        key = (address, nbytes)
        buffer = self._staging.get(key)
        if buffer is None:
            if len(self._staging) >= _STAGING_LIMIT:
                self.stream.synchronize()
                self._staging.clear()
            buffer = self._staging[key] = self.cuda.pagelocked_empty(max(1, nbytes), np.uint8)
        return buffer[:nbytes]

    def to_device(self, address: int, array: np.ndarray) -> None:
        """Host -> device through the address's pinned staging buffer (asynchronous: the
        stream orders it before later launches; the staging buffer is reused only after
        `synchronize`, which every run ends with)."""
        self._make_current()
        staging = self._staged(address, array.nbytes)
        staging[:] = array.reshape(-1).view(np.uint8)
        self.cuda.memcpy_htod_async(address, staging, self.stream)

    def to_host(self, address: int, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self._make_current()
        out = np.empty(shape, dtype)
        staging = self._staged(address, out.nbytes)
        if out.nbytes:
            self.cuda.memcpy_dtoh_async(staging, address, self.stream)
            self.stream.synchronize()
            out.reshape(-1).view(np.uint8)[:] = staging
        return out

    def copy(self, destination: int, source: int, nbytes: int) -> None:
        self._make_current()
        if nbytes:
            self.cuda.memcpy_dtod_async(destination, source, nbytes, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    # -- kernels --------------------------------------------------------------------------------
    def load(self, plan) -> Dict[str, object]:
        """The plan's kernels: its PTX module loaded (JIT-compiled by the driver), each entry
        prepared with one pointer argument per buffer."""
        self._make_current()
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
        self._make_current()
        function.prepared_async_call((grid, 1), (block, 1, 1), self.stream, *pointers)

    def capture(self, sequence) -> object:
        """A CUDA graph of the launches (function, grid, block, shared, pointers), captured
        from the stream and instantiated."""
        self._make_current()
        self.stream.synchronize()
        self.stream.begin_capture()
        try:
            for function, grid, block, shared, pointers in sequence:
                self.launch(function, grid, block, shared, pointers)
        finally:
            graph = self.stream.end_capture()
        return graph.instantiate()

    def replay(self, graph) -> None:
        graph.launch(self.stream)
