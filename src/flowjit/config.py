"""flowjit's settings, all in one place. Environment variables are read here and nowhere else.

FLOWJIT_BACKEND        default Session backend: "llvm" (native code), "eager" (numpy reference)
                       or "cuda" (an NVIDIA GPU through pycuda: the `gpu` extra)
FLOWJIT_DUMP_DIR       if set, every executable a Session compiles is dumped there, one
                       folder per executable, one file per pipeline stage (like XLA's
                       --xla_dump_to); dumping never changes what is compiled or cached
FLOWJIT_VERIFY         "1": verify the IR after every pass (the tests always do)
FLOWJIT_DISABLE_PASSES comma-separated pass names to skip (e.g. "fusion,cse")
FLOWJIT_PASSES         comma-separated pass names to run instead of the default pipeline
FLOWJIT_LOG            comma-separated: "recompile" logs why each executable is compiled,
                       "passes" the time each pass took and whether it changed the IR,
                       "fallback" which instructions of a native executable have no kernel
                       and run as numpy on the host (logger "flowjit")
FLOWJIT_CACHE_SIZE     executables kept per Session (least recently used evicted; 64)
FLOWJIT_CACHE_DIR      where compiled kernels persist between processes
                       (default ~/.cache/flowjit; "off" disables the disk cache)
FLOWJIT_CPU            LLVM CPU model to generate code for instead of the host's (e.g. "haswell");
                       with FLOWJIT_CPU_FEATURES (e.g. "+avx2,+fma"), which decide the vector
                       width: runs another ISA's code paths on a host that can execute them
FLOWJIT_NUMPY_REPR     "legacy" (default): numpy scalars print as 7.0, not np.float32(7.0),
                       so TF1-era programs print what they printed then; "numpy": leave
                       numpy's own setting alone
FLOWJIT_MNIST          what `input_data.read_data_sets` reads: "mnist" (default: the IDX
                       files in train_dir, downloaded when absent) or "digits" (offline:
                       scikit-learn's handwritten digits upsampled to 28x28, so an unmodified
                       MNIST tutorial runs without the network)
FLOWJIT_MNIST_URL      where MNIST's files are downloaded from (default: TF1's source URL)
FLOWJIT_THREADS        cores a process of a flowjit.distribute job computes on (default: its
                       equal share of the machine's cores, one left for communication)
FLOWJIT_FUSION_THRESHOLD  bytes of gradients fused into one allreduce (default 64 MB, as
                       Horovod's tensor fusion; 0 disables the bucketing pass)
FLOWJIT_COLLECTIVE_TIMEOUT  seconds a collective waits for the other ranks before it fails
                       with DeadlineExceededError (default 300)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple

@dataclass
class Config:
    backend: str = "llvm"
    backend_from_environment: bool = False  # FLOWJIT_BACKEND set: it wins over tf.device
    numpy_repr: str = "legacy"
    dump_dir: Optional[str] = None
    verify_ir: bool = False
    disabled_passes: Tuple[str, ...] = ()
    passes: Optional[Tuple[str, ...]] = None
    log_recompiles: bool = False
    log_passes: bool = False
    log_fallbacks: bool = False
    cache_size: int = 64
    cache_dir: Optional[str] = None
    target_cpu: Optional[str] = None
    target_features: Optional[str] = None
    cuda_home: Optional[str] = None  # the CUDA toolkit (libdevice, ptxas): CUDA_HOME/CUDA_PATH
    mnist: str = "mnist"
    mnist_url: Optional[str] = None
    threads: Optional[int] = None
    fusion_threshold: int = 64 << 20
    collective_timeout: float = 300.0


def _from_environment() -> Config:
    config = Config()
    config.backend = os.environ.get("FLOWJIT_BACKEND", config.backend).strip().lower()
    config.backend_from_environment = bool(os.environ.get("FLOWJIT_BACKEND", "").strip())
    config.numpy_repr = os.environ.get("FLOWJIT_NUMPY_REPR", config.numpy_repr).strip().lower()
    config.dump_dir = os.environ.get("FLOWJIT_DUMP_DIR") or None
    config.verify_ir = os.environ.get("FLOWJIT_VERIFY", "") not in ("", "0")
    config.disabled_passes = tuple(
        p.strip() for p in os.environ.get("FLOWJIT_DISABLE_PASSES", "").split(",") if p.strip())
    config.log_recompiles = "recompile" in os.environ.get("FLOWJIT_LOG", "").lower()
    config.log_passes = "passes" in os.environ.get("FLOWJIT_LOG", "").lower()
    config.log_fallbacks = "fallback" in os.environ.get("FLOWJIT_LOG", "").lower()
    cache_dir = os.environ.get("FLOWJIT_CACHE_DIR",
                               os.path.join(os.path.expanduser("~"), ".cache", "flowjit"))
    config.cache_dir = None if cache_dir.strip().lower() in ("", "off", "0") else cache_dir
    config.cache_size = max(1, int(os.environ.get("FLOWJIT_CACHE_SIZE", config.cache_size)))
    config.target_cpu = os.environ.get("FLOWJIT_CPU") or None
    config.target_features = os.environ.get("FLOWJIT_CPU_FEATURES")
    config.cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or None
    config.mnist = os.environ.get("FLOWJIT_MNIST", config.mnist).strip().lower() or "mnist"
    config.mnist_url = os.environ.get("FLOWJIT_MNIST_URL") or None
    if os.environ.get("FLOWJIT_THREADS"):
        config.threads = max(1, int(os.environ["FLOWJIT_THREADS"]))
    config.fusion_threshold = int(os.environ.get("FLOWJIT_FUSION_THRESHOLD",
                                                 config.fusion_threshold))
    config.collective_timeout = float(os.environ.get("FLOWJIT_COLLECTIVE_TIMEOUT",
                                                     config.collective_timeout))
    if os.environ.get("FLOWJIT_PASSES"):
        config.passes = tuple(p.strip() for p in os.environ["FLOWJIT_PASSES"].split(",")
                              if p.strip())
    return config


config = _from_environment()


def resolve_backend(name: "str | None", gpu_requested: bool = False) -> str:
    """The name of the backend a Session uses: its argument, else FLOWJIT_BACKEND, else
    "cuda" for a graph built under `tf.device('/gpu:0')` if the CUDA backend can run here
    (otherwise the default, logged: TF1's soft placement), else the default
    (runtime/backends.py checks that it exists)."""
    if name:
        return name.lower()
    if gpu_requested and not config.backend_from_environment:
        from flowjit.runtime.cuda import unavailable_reason
        reason = unavailable_reason()
        if reason is None:
            return "cuda"
        import logging
        logging.getLogger("flowjit").info(
            "the graph asks for a GPU (tf.device), but the CUDA backend is unavailable (%s): "
            "running on the %s backend", reason, config.backend)
    return config.backend.lower()


def _configure_logging() -> None:
    import logging
    if config.log_recompiles or config.log_passes or config.log_fallbacks:
        logger = logging.getLogger("flowjit")
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("flowjit: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)


_configure_logging()
