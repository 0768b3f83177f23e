"""Backends: where an executable runs and where its buffers live, as a registry.

A backend turns an optimized Func into a run function (`compile`) and moves values between
the host's numpy arrays and its own buffers (`allocate`, `from_host`, `to_host`). The
compiler asks the registry for the Session's backend by name; a new target (the CUDA
backend) registers itself here and nothing else in the compiler changes.

    eager   the numpy interpreter, instruction by instruction: the reference
    llvm    native CPU code (runtime/cpu.py); instructions without a kernel run as numpy
            thunks on the same host buffers, counted in the build's stats (`numpy`) and
            logged with FLOWJIT_LOG=fallback
    cuda    PTX kernels launched on an NVIDIA GPU with pycuda (runtime/cuda.py); variables
            stay in device memory between runs (`resident`: the Session keeps the values
            its executables return, and gives values set from the host to `adopt`)

On the CPU a device buffer is host memory: `from_host` and `to_host` are the same array.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from flowjit.config import config
from flowjit.ir.core import Func
from flowjit.runtime.buffers import data_address

_logger = logging.getLogger("flowjit")

RunFn = Callable[..., List[np.ndarray]]


@dataclass(frozen=True)
class DeviceBuffer:
    """A tensor's memory on a device: where it is, and what it holds. `host` is the array
    itself when the device's memory is the host's."""

    device: str
    address: int
    shape: Tuple[int, ...]
    dtype: np.dtype
    host: Optional[np.ndarray] = None


class Backend:
    name = ""
    device = "cpu"
    resident = False  # whether new variable values live in the backend's memory

    def require(self) -> None:
        """Raises errors.UnavailableError, saying why, if this backend cannot run here."""

    def adopt(self, array: np.ndarray):
        """A variable's value set from the host, as the backend keeps it (resident ones)."""
        return array

    def compile(self, func: Func, dump: Optional[Callable] = None) -> Tuple[RunFn, Dict]:
        """The run function of `func` (`run(inputs, buffers=None) -> outputs`), and
        statistics of the build."""
        raise NotImplementedError

    def allocate(self, shape: Tuple[int, ...], dtype) -> DeviceBuffer:
        return self.from_host(np.empty(shape, dtype))

    def from_host(self, array: np.ndarray) -> DeviceBuffer:
        array = np.ascontiguousarray(array)
        return DeviceBuffer(self.device, data_address(array), array.shape, array.dtype, array)

    def to_host(self, buffer: DeviceBuffer) -> np.ndarray:
        return buffer.host


class EagerBackend(Backend):
    name = "eager"

    def compile(self, func: Func, dump: Optional[Callable] = None) -> Tuple[RunFn, Dict]:
        from flowjit.interp.evaluate import evaluate
        return (lambda inputs, buffers=None, timer=None: evaluate(func, inputs, timer=timer)), \
            {"numpy": len(func.body), "native": 0, "fallbacks": []}


class LLVMBackend(Backend):
    name = "llvm"

    def compile(self, func: Func, dump: Optional[Callable] = None) -> Tuple[RunFn, Dict]:
        from flowjit.runtime import cpu
        run, stats = cpu.build(func, dump=dump)
        if stats["fallbacks"]:
            log_fallbacks(func.name, stats["fallbacks"])
        return run, stats


def log_fallbacks(name: str, fallbacks: List[str]) -> None:
    """FLOWJIT_LOG=fallback: which instructions of an executable run as numpy on the host."""
    if config.log_fallbacks:
        _logger.info("%s: %d instruction(s) without a native kernel run in numpy: %s", name,
                     len(fallbacks), "; ".join(fallbacks[:20]) +
                     (f"; ... {len(fallbacks) - 20} more" if len(fallbacks) > 20 else ""))


_BACKENDS: Dict[str, Backend] = {}
# Backends whose module registers them when first asked for: the CUDA one's (its device
# plans and PTX emitter) would cost every program's import a sixth of its time.
_REGISTERED_ON_IMPORT = {"cuda": "flowjit.runtime.cuda"}


def register_backend(backend: Backend) -> None:
    _BACKENDS[backend.name] = backend


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS and name in _REGISTERED_ON_IMPORT:
        importlib.import_module(_REGISTERED_ON_IMPORT[name])
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"Unknown flowjit backend {name!r}; available: "
                         f"{', '.join(available_backends())}") from None


def available_backends() -> List[str]:
    return sorted(set(_BACKENDS) | set(_REGISTERED_ON_IMPORT))


register_backend(EagerBackend())
register_backend(LLVMBackend())
