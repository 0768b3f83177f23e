"""flowjit's settings, all in one place. Environment variables are read here and nowhere else.

FLOWJIT_BACKEND        default Session backend ("eager"; "llvm" once that backend lands)
FLOWJIT_NUMPY_REPR     "legacy" (default): numpy scalars print as 7.0, not np.float32(7.0),
                       so TF1-era programs print what they printed then; "numpy": leave
                       numpy's own setting alone
"""
from __future__ import annotations

import os
from dataclasses import dataclass

AVAILABLE_BACKENDS = ("eager",)


@dataclass
class Config:
    backend: str = "eager"
    numpy_repr: str = "legacy"


def _from_environment() -> Config:
    config = Config()
    config.backend = os.environ.get("FLOWJIT_BACKEND", config.backend).strip().lower()
    config.numpy_repr = os.environ.get("FLOWJIT_NUMPY_REPR", config.numpy_repr).strip().lower()
    return config


config = _from_environment()


def resolve_backend(name: "str | None") -> str:
    """The backend a Session uses: its argument, else FLOWJIT_BACKEND, else the default."""
    backend = (name or config.backend).lower()
    if backend not in AVAILABLE_BACKENDS:
        raise ValueError(f"Unknown flowjit backend {backend!r}; available: "
                         f"{', '.join(AVAILABLE_BACKENDS)}")
    return backend
