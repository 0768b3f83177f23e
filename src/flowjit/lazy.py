"""Attributes of a package that are imported on first use, so that `import flowjit` stays
cheap for what most programs never touch (checkpoints, graph files, the timeline).

    __getattr__, __dir__ = lazy_attributes(__name__, {"Saver": "flowjit.train.saver:Saver",
                                                      "timeline": "flowjit.client.timeline"})

`module:attribute` names an attribute of a module, a bare module name the module itself.
Once imported, an attribute is an ordinary global of the package.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple


def lazy_attributes(package: str, table: Dict[str, str]
                    ) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """(`__getattr__`, `__dir__`) for module `package` (PEP 562), serving `table`."""
    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        value = getattr(module, attribute) if attribute else module
        setattr(sys.modules[package], name, value)  # the next lookup finds it directly
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
