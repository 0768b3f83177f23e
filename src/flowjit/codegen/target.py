"""Targets: what differs between the CPU and (later) the GPU backend.

The kernel emitter writes target-neutral LLVM IR loops; a Target names the triple and
features, optimizes (the new pass builder at O3, vectorizing for the host's vector width) and
turns a module into something callable. The CPU target JIT-compiles with MCJIT; a PTX target
will emit PTX from the same IR through llvmlite's NVPTX backend and launch it with pycuda.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pickle
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import llvmlite
import llvmlite.binding as llvm
from llvmlite import ir

from flowjit.config import config

KernelFn = Callable[[ctypes.Array, int, int], None]
# void kernel(ptr* buffers, i64 begin, i64 end); ctypes releases the GIL during the call,
# so Python threads can run pieces of one kernel on several cores.
_KERNEL_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


class CompiledModule:
    """Native code of one LLVM module, and the engine that owns it. The code is freed (the
    engine disposed) when the last object holding this one goes: its kernels, a native
    segment, an executable, or the target's GEMM cores (which live as long as the process)."""

    __slots__ = ("engine", "__weakref__")

    def __init__(self, engine) -> None:
        self.engine = engine

    def address(self, name: str) -> int:
        address = self.engine.get_function_address(name)
        if not address:  # never hand out a null function
            raise RuntimeError(f"flowjit bug: compiled module has no function {name!r}")
        return address


class CompiledKernel:
    """A native kernel and the module that owns its code: whoever calls the kernel holds
    this object, so the code lives as long as any caller (cache eviction is then safe)."""

    __slots__ = ("module", "fn", "address")

    def __init__(self, module: CompiledModule, name: str) -> None:
        self.module = module
        self.address = module.address(name)
        self.fn: KernelFn = _KERNEL_SIGNATURE(self.address)

    def __call__(self, args, begin: int, end: int) -> None:
        self.fn(args, begin, end)


def kernel_function(kernel: CompiledKernel, name: str) -> KernelFn:
    """Another function of the kernel's module with the kernel signature (e.g. `prepare`)."""
    return _KERNEL_SIGNATURE(kernel.module.address(name))


class CPUTarget:
    """The host CPU: its exact model and features (AVX-512 where present, AVX2 otherwise).
    `cpu` and `features` (LLVM names, e.g. "haswell" and "+avx2,+fma") force another model
    that the host can run, to generate and test another ISA's code paths here; the features
    named decide the vector width and register count."""

    name = "cpu"

    def __init__(self, cpu: Optional[str] = None, features: Optional[str] = None) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.cpu = cpu or llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten() if features is None else features
        target = llvm.Target.from_default_triple()
        self.machine = target.create_target_machine(cpu=self.cpu, features=self.features,
                                                    opt=3, jit=True)
        self.triple = llvm.get_default_triple()
        # What the GEMM's tiles and blocks are sized from (codegen/gemm_core.py): float32 lanes
        # of the widest vector unit, how many vector registers it has, the data caches.
        self.lanes = 16 if "+avx512f" in self.features else 8 if "+avx2" in self.features else 4
        self.vector_registers = 32 if "+avx512f" in self.features else 16
        self.cache_bytes = host_cache_bytes()
        # Held while LLVM compiles or links a module, so that a module is compiled once and
        # the GEMM cores are registered once (reentrant: a core is compiled under it).
        self._lock = threading.RLock()
        # Modules by key while anything uses them: an executable evicted from its Session's
        # cache, or a closed Session, frees code that no one else shares.
        self._cache: "weakref.WeakValueDictionary[str, CompiledModule]" = \
            weakref.WeakValueDictionary()
        # each cached module's metadata (kernel infos), as long as the module lives
        self._metadata: "weakref.WeakKeyDictionary[CompiledModule, Any]" = \
            weakref.WeakKeyDictionary()
        self._disk = DiskCache(config.cache_dir)
        self._cores: Dict[str, CompiledModule] = {}

    @property
    def capabilities(self):
        from flowjit.codegen.schedule import Capabilities
        from flowjit.runtime.threads import usable_cores
        return Capabilities(vector_bits=self.lanes * 32, parallel_units=usable_cores(),
                            shared_memory_bytes=0, math="llvm+libm",
                            calling_convention="ptr-table+range")

    def tiles(self, sched) -> Dict[str, int]:
        """Tile sizes of a schedule here: the vector's lanes of the kernel's dtype, and for
        a contraction the GEMM's register tile, cache blocks and per-shape plan (gemm.py)."""
        dtype = sched.instr.results[0].type.dtype
        tiles = {"vector": max(1, self.lanes * 4 // dtype.np_dtype.itemsize)}
        if sched.kind == "contraction":
            from flowjit.codegen import gemm
            m, n, k = sched.space
            p = gemm.plan(m, n, k, sched.facts["transpose_a"], sched.facts["transpose_b"],
                          gemm.blocking(dtype, self))
            tiles.update(mr=p.blocking.mr, nr=p.blocking.nr, kc=p.blocking.kc,
                         nc=p.blocking.nc, row_block=p.row_block, col_block=p.col_block,
                         pack_b=int(p.pack_b), dot=int(p.dot))
        return tiles

    def new_module(self, name: str) -> ir.Module:
        module = ir.Module(name=name)
        module.triple = self.triple
        module.data_layout = str(self.machine.target_data)
        return module

    def optimize(self, module: llvm.ModuleRef) -> None:
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        options.loop_vectorization = True
        options.slp_vectorization = True
        options.loop_unrolling = True
        run_default_pipeline(self.machine, options, module)

    def compile_kernel(self, module: ir.Module, name: str) -> "CompiledKernel":
        """Optimizes and JIT-compiles `module`; returns its function `name`."""
        return CompiledKernel(self.compile_ir_text(str(module), module.name), name)

    def compile_ir_text(self, text: str, what: str) -> CompiledModule:
        """Optimizes and JIT-compiles LLVM IR text (cached by the text itself)."""
        return self.compile_cached(text, lambda: (text, None), what)[0]

    def compile_cached(self, source: str, make: Callable[[], Tuple[str, Any]], what: str
                       ) -> Tuple[CompiledModule, Any]:
        """The compiled module, and its metadata, that `make()` would give as (LLVM IR text,
        metadata), where `source` is what decides both (e.g. the optimized IR of its
        kernels). Equal sources compile once per process while in use, and their object
        code and metadata are kept on disk (DiskCache), so that a later process skips
        `make` -- the code generation -- as well as LLVM."""
        # (the data caches size the GEMM's blocks, whose core symbols kernels call by name)
        key = hashlib.sha256("\n".join([source, self.cpu, self.features,
                                         f"{self.lanes} {self.vector_registers} "
                                         f"{sorted(self.cache_bytes.items())}",
                                         codegen_fingerprint()]).encode()).hexdigest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                return cached, self._metadata[cached]
            entry = self._disk.load(key)
            obj, metadata = pickle.loads(entry) if entry is not None else (None, None)
            if obj is None:
                text, metadata = make()
                try:
                    parsed = llvm.parse_assembly(text)
                    parsed.verify()
                except RuntimeError as e:
                    raise RuntimeError(f"flowjit bug: invalid LLVM IR for {what}: {e}") from None
                self.optimize(parsed)
                obj = self._new_machine().emit_object(parsed)
                self._disk.store(key, pickle.dumps((obj, metadata)))
            compiled = CompiledModule(load_object(obj, self._new_machine()))
            self._cache[key] = compiled
            self._metadata[compiled] = metadata
            return compiled, metadata

    def ensure_gemm_core(self, dtype) -> None:
        """Compiles the shape-generic GEMM core for `dtype` once, and registers its symbols
        so that the matmul kernels that call them by name link against them."""
        from flowjit.codegen import gemm_core
        blocking = gemm_core.blocking(dtype, self)
        with self._lock:  # two threads finding no core must not both register one
            if blocking.name in self._cores:
                return

            def make() -> Tuple[str, List[str]]:
                module = self.new_module(blocking.name)
                symbols = gemm_core.emit_core(module, blocking)
                return str(module), symbols
            # (the blocking decides the core's code: a warm start does not generate it)
            compiled, symbols = self.compile_cached(f"gemm core {blocking!r}", make,
                                                    blocking.name)
            for symbol in symbols:
                llvm.add_symbol(symbol, compiled.address(symbol))
            self._cores[blocking.name] = compiled  # for the process's life: called by name

    def _new_machine(self):
        target = llvm.Target.from_default_triple()
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                            jit=True)

    def optimized_ir(self, module: ir.Module) -> str:
        """The LLVM IR after optimization (for dumps)."""
        parsed = llvm.parse_assembly(str(module))
        self.optimize(parsed)
        return str(parsed)


def load_object(obj: bytes, machine) -> "llvm.ExecutionEngine":
    """An MCJIT engine (owning `machine`) with the object code `obj` linked and loaded. An
    engine has a module of its own: an empty one here, whose code the engine's object cache
    answers with `obj`. (Added beside the empty module instead, as `add_object_file` does,
    `obj` loads 2-3x slower: finalizing the engine would code-generate the empty module.)"""
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
    engine.set_object_cache(getbuffer_func=lambda module: obj)
    engine.finalize_object()
    return engine


def run_default_pipeline(machine, options, module: llvm.ModuleRef) -> None:
    """Runs LLVM's default pipeline for `machine` and `options` on `module`, then frees the
    pipeline. llvmlite never does: its ModulePassManager inherits ObjectRef's no-op
    `_dispose` ahead of NewPassManager's, which leaked the whole O3 pipeline (about 30 KiB,
    70 KiB after a run) with every optimized module. (What still leaks is llvmlite's: about
    2 KiB of pass instrumentation per PassBuilder.)"""
    builder = llvm.create_pass_builder(machine, options)
    passes = builder.getModulePassManager()
    try:
        passes.run(module, builder)
    finally:
        llvm.newpassmanagers.NewPassManager._dispose(passes)
        passes.detach()


class DiskCache:
    """Object code by key, in files written atomically (safe under concurrent processes).
    An entry names the key it was stored under and carries a digest of both, so an entry
    that is truncated, corrupt, or filed under another key's name (copied, or renamed by
    hand) is ignored and rebuilt. The directory is kept under `max_bytes`: a store that
    exceeds it removes the least recently used entries (a load marks an entry used), down
    to three quarters of it.

    Measuring the directory stats every entry (0.45 s for the 67,000 of a full cache), so a
    process does it at its first store and then only when its own stores since have filled
    a sixteenth of the limit or its estimate (the last measure plus its stores) passes the
    limit: other processes' stores are seen at the next measure, so N processes writing at
    once may overshoot the limit by N sixteenths. (Measured on every store, a cold `make
    test` spent most of its time listing the cache.)"""

    MAGIC = b"flowjit-object-3\n"  # then b"<key>\n", sha256(key + entry), the entry: a
    # pickle of (object code, metadata)

    def __init__(self, directory, max_bytes: int = 256 << 20) -> None:
        self.directory = os.path.join(directory, "kernels") if directory else None
        self.max_bytes = max_bytes
        self._estimate: Optional[int] = None  # bytes in the directory (None: not measured)
        self._stored_since_measure = 0

    def load(self, key: str) -> Optional[bytes]:
        if not self.directory:
            return None
        path = os.path.join(self.directory, key + ".o")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        obj = self._unpack(key, data)
        if obj is None:
            return None  # rebuilt and overwritten
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        return obj

    def _pack(self, key: str, obj: bytes) -> bytes:
        filed_as = key.encode() + b"\n"
        return self.MAGIC + filed_as + hashlib.sha256(filed_as + obj).digest() + obj

    def _unpack(self, key: str, data: bytes) -> Optional[bytes]:
        """The object of an entry stored under `key`; None for any other content."""
        filed_as = key.encode() + b"\n"
        header = self.MAGIC + filed_as
        if not data.startswith(header):
            return None
        digest, obj = data[len(header):len(header) + 32], data[len(header) + 32:]
        if hashlib.sha256(filed_as + obj).digest() != digest:
            return None
        return obj

    def store(self, key: str, obj: bytes) -> None:
        if not self.directory:
            return
        temporary = None
        entry = self._pack(key, obj)
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(entry)
            os.replace(temporary, os.path.join(self.directory, key + ".o"))
            temporary = None
        except OSError:
            pass  # a read-only or full disk only costs the next process a compile
        finally:
            if temporary is not None:
                _remove(temporary)
            # (after a failed store too: a full disk needs the space most)
            self._stored(len(entry))

    def _stored(self, size: int) -> None:
        """Counts a store; measures and trims the directory when it may be over its limit
        (or was never measured, or this process has stored a sixteenth of it since)."""
        if self._estimate is not None:
            self._estimate += size
            self._stored_since_measure += size
            if self._estimate <= self.max_bytes and \
                    self._stored_since_measure < self.max_bytes // 16:
                return
        self._trim()

    def _trim(self) -> None:
        """Measures the directory; when it is over `max_bytes`, removes the least recently
        used entries until it fits three quarters of it (so that the next stores do not
        measure again at once); and removes temporary files that writers which died left
        behind. A fresh temporary file is another process's store in progress: it counts,
        but stays."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        now = time.time()
        total, entries = 0, []
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed meanwhile by another process
                continue
            if name.endswith(".tmp") and now - stat.st_mtime > STALE_TEMPORARY_SECONDS:
                _remove(path)
                continue
            total += stat.st_size
            if not name.endswith(".tmp"):
                entries.append((stat.st_mtime, stat.st_size, path))
        if total > self.max_bytes:
            for _, size, path in sorted(entries):  # oldest first
                if total <= self.max_bytes * 3 // 4:
                    break
                if _remove(path):
                    total -= size
        self._estimate, self._stored_since_measure = total, 0


# A store writes its temporary file in milliseconds: one this old belongs to a dead writer.
STALE_TEMPORARY_SECONDS = 600


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:  # gone already, or a read-only directory
        return False


def host_cache_bytes() -> Dict[int, int]:
    """Data cache size per level (1, 2, 3) of this process's first CPU, from Linux's sysfs;
    typical sizes where it cannot be read."""
    sizes = {1: 32 << 10, 2: 512 << 10, 3: 8 << 20}
    cpu = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else {0}
    folder = f"/sys/devices/system/cpu/cpu{min(cpu, default=0)}/cache"
    try:
        entries = os.listdir(folder)
    except OSError:
        return sizes
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for entry in entries:
        try:
            def read(what: str) -> str:
                with open(os.path.join(folder, entry, what)) as f:
                    return f.read().strip()
            if read("type") == "Instruction":
                continue
            size = read("size")
            value = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
            sizes[int(read("level"))] = value
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return sizes


@functools.lru_cache(maxsize=1)
def codegen_fingerprint() -> str:
    """What decides generated code besides a cache key's source (the kernels' IR and
    schedules, where the op table's facts such as index maps and combiners appear): the
    code generator's own files (codegen/, the IR's structure keys, the op table's roles and
    emitters, the runtime's segment layout and worker pool), and flowjit's and llvmlite's
    versions. A changed emitter therefore never loads code that an older one cached, and
    edits elsewhere (ops, the Session, examples) keep the cache."""
    from flowjit import __version__
    digest = hashlib.sha256(f"{__version__} {llvmlite.__version__}".encode())
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    here = os.path.join(package, "codegen")
    files = sorted(os.path.join(here, f) for f in os.listdir(here) if f.endswith(".py"))
    files += [os.path.join(package, *path) for path in (
        ("ir", "core.py"), ("graph", "registry.py"), ("runtime", "cpu.py"),
        ("runtime", "threads.py"))]
    for path in files:
        digest.update(os.path.relpath(path, package).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


_cpu_target: Optional[CPUTarget] = None
_cpu_target_lock = threading.Lock()


def cpu_target() -> CPUTarget:
    """The process's one CPU target. There must never be two: each would register its own
    GEMM cores under the same global symbols, and the code of the one that lost the race
    would be freed under the kernels linked to it."""
    global _cpu_target
    if _cpu_target is None:
        with _cpu_target_lock:
            if _cpu_target is None:
                _cpu_target = CPUTarget(config.target_cpu, config.target_features)
    return _cpu_target



# -- forks ------------------------------------------------------------------------------------
# A forked child has only the thread that forked: a lock another thread held at the fork
# stays held for ever in the child, whose first compile would then hang. So a fork waits
# until no thread creates the target, compiles with it, or is inside any LLVM call (llvmlite
# serializes them all with one lock), and the child starts with all of them free and LLVM's
# own state consistent.
_release_after_fork: List[Callable[[], None]] = []


def _before_fork() -> None:
    _cpu_target_lock.acquire()
    _release_after_fork.append(_cpu_target_lock.release)
    if _cpu_target is not None:
        _cpu_target._lock.acquire()
        _release_after_fork.append(_cpu_target._lock.release)
    llvm_lock = getattr(llvm.ffi.lib, "_lock", None)  # llvmlite's; not public API
    if llvm_lock is not None:
        llvm_lock.__enter__()
        _release_after_fork.append(lambda: llvm_lock.__exit__(None, None, None))


def _after_fork() -> None:
    """In the parent and in the child alike: the forking thread holds the locks in both."""
    while _release_after_fork:
        _release_after_fork.pop()()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
