"""The IR's textual form. Deterministic: values are renamed in order of definition (params
keep their sanitized names), attributes are sorted, so dumps diff cleanly.

    func @main(%x: f32[?,784] {feed="x:0"}, %W: f32[784,10] {var="W"}) {
      %0: f32[?,10] = matmul %x, %W {transpose_a=false, transpose_b=false}  loc("MatMul" ...)
      return %0 {fetch="MatMul:0"}
    }
"""
from __future__ import annotations

import re
from collections import ChainMap
from typing import Any, List, Mapping, MutableMapping, Optional

import numpy as np

from flowjit import dtypes
from flowjit.graph.shape import TensorShape
from flowjit.ir.core import Func, Instr, Location, Value

_NAME_OK = re.compile(r"[^A-Za-z0-9_.]")


def print_func(func: Func, elide_constants_over: int = 0) -> str:
    """The text of `func`. `elide_constants_over` > 0 abbreviates constants with more
    elements than that (for human-facing dumps; such text does not parse back)."""
    return "\n".join(_Printer(elide_constants_over).func(func, indent="")) + "\n"


def format_instrs(instrs: List[Instr], names: Mapping[Value, str],
                  elide_constants_over: int = 16) -> List[str]:
    """Lines of `instrs` (a kernel's region), their free values named by `names`."""
    scope = _Scope()
    for value, name in names.items():
        scope.hint(value, name)
    printer = _Printer(elide_constants_over)
    return [line for instr in instrs for line in printer.instr(instr, scope, "")]


class _Scope:
    """The names printed so far: `%0, %1, ...` for results in order of definition, a
    sanitized and uniqued hint for parameters. A region's scope sits over its function's
    (new names unique among both, kept to the region) without copying it, and remembers the
    next free number and suffix, so that naming n values costs O(n) however they nest."""

    def __init__(self, parent: Optional["_Scope"] = None) -> None:
        if parent is None:
            self.names: MutableMapping[Value, str] = {}
            self.taken: MutableMapping[str, None] = {}
            self.suffixes: MutableMapping[str, int] = {}
            self.counter = 0
        else:
            self.names = ChainMap({}, parent.names)
            self.taken = ChainMap({}, parent.taken)
            self.suffixes = ChainMap({}, parent.suffixes)
            self.counter = parent.counter  # every smaller number is taken already

    def child(self) -> "_Scope":
        return _Scope(self)

    def number(self, value: Value) -> str:
        while str(self.counter) in self.taken:
            self.counter += 1
        self.counter += 1
        return self._define(value, str(self.counter - 1))

    def hint(self, value: Value, hint: str) -> str:
        """`hint`, or `hint_1`, `hint_2`... for the first one not taken (never all digits,
        which would read as a number)."""
        name = _sanitize(hint)
        i = self.suffixes.get(name, 0)
        candidate = name if i == 0 else f"{name}_{i}"
        while candidate in self.taken or candidate.isdigit():
            i += 1
            candidate = f"{name}_{i}"
        self.suffixes[name] = i
        return self._define(value, candidate)

    def _define(self, value: Value, name: str) -> str:
        self.names[value] = name
        self.taken[name] = None
        return name


class _Printer:
    def __init__(self, elide_over: int) -> None:
        self.elide_over = elide_over

    def func(self, func: Func, indent: str) -> List[str]:
        scope = _Scope()
        params = [f"%{scope.hint(p.value, p.value.name or 'arg')}: {p.value.type} "
                  f"{{{p.role}={_string(p.key)}}}" for p in func.params]
        lines = [f"{indent}func @{func.name}({', '.join(params)}) {{"]
        for instr in func.body:
            lines.extend(self.instr(instr, scope, indent + "  "))
        results = ", ".join(f"%{scope.names[r.value]} {{{r.role}={_string(r.key)}}}"
                            for r in func.results)
        lines.append(f"{indent}  return {results}" if results else f"{indent}  return")
        lines.append(f"{indent}}}")
        return lines

    def instr(self, instr: Instr, scope: _Scope, indent: str) -> List[str]:
        lhs = ", ".join(f"%{scope.number(r)}: {r.type}" for r in instr.results)
        text = f"{indent}{lhs} = {instr.op}" if lhs else f"{indent}{instr.op}"
        if instr.operands:
            text += " " + ", ".join(f"%{scope.names[v]}" for v in instr.operands)
        if instr.attrs:
            text += " {" + ", ".join(f"{k}={self.attr(v)}"
                                     for k, v in sorted(instr.attrs.items())) + "}"
        if instr.loc is not None:
            text = f"{text:<60}  {format_location(instr.loc)}"
        if not instr.regions:
            return [text]
        # Each region: its params, its body, what it yields. A fusion's params are its
        # operands; a cond's branches take the operands after the predicate; a while's
        # condition and body take them all (the loop variables, then the invariants).
        lines = [text + " {"]
        for number, region in enumerate(instr.regions):
            if number:
                lines.append(f"{indent}}} {{")
            inner = scope.child()
            params = [f"%{inner.hint(p.value, p.value.name or 'p')}: {p.value.type}"
                      for p in region.params]
            lines.append(f"{indent}  ^({', '.join(params)}):")
            for sub in region.body:
                lines.extend(self.instr(sub, inner, indent + "    "))
            scope.counter = inner.counter  # numbers stay unique across regions
            lines.append(f"{indent}    yield " + ", ".join(f"%{inner.names[r.value]}"
                                                          for r in region.results))
        lines.append(f"{indent}}}")
        return lines

    def attr(self, value: Any) -> str:
        return format_attr(value, self.elide_over)


def format_attr(value: Any, elide_over: int = 0) -> str:
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dtypes.DType):
        return value.ir_name
    if isinstance(value, TensorShape):
        if value.dims is None:
            return "shape<*>"
        return "shape<" + ",".join("?" if d is None else str(d) for d in value.dims) + ">"
    if isinstance(value, np.ndarray):
        return _dense(value, elide_over)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_attr(v, elide_over) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


def _dense(array: np.ndarray, elide_over: int) -> str:
    dtype = dtypes.as_dtype(array.dtype)
    dims = ",".join(str(d) for d in array.shape)
    head = f"dense<{dtype.ir_name}[{dims}]"
    flat = array.reshape(-1)
    element = _bytes if dtype is dtypes.string else format_attr
    if array.size > 1 and np.all(flat == flat[0]):
        return f"{head}, splat {element(flat.tolist()[0])}>"
    if elide_over and array.size > elide_over:
        return f"{head}, ...>"
    return f"{head}, [" + ", ".join(element(x) for x in flat.tolist()) + "]>"


def _bytes(value: bytes) -> str:
    """An element of a string constant: printable ASCII as is, other bytes as \\xNN."""
    return '"' + "".join(_ESCAPES.get(chr(b)) or (chr(b) if 0x20 <= b < 0x7f else
                                                 f"\\x{b:02x}") for b in value) + '"'


def _float(x: float) -> str:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(x)
    return text if any(c in text for c in ".en") else text + ".0"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _string(s: str) -> str:
    """A quoted string on one line: backslash, quote, newline, tab and return escaped as in
    C, other control characters as \\xNN (the parser undoes exactly this)."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + "".join(_ESCAPES.get(c) or (c if c.isprintable() or ord(c) > 0xff
                                             else f"\\x{ord(c):02x}") for c in s) + '"'


def format_location(loc: Location) -> str:
    parts = [_string(loc.name)]
    if loc.op_type:
        parts.append(_string(loc.op_type))
    if loc.site:
        parts.append(_string(loc.site))
    return f"loc({', '.join(parts)})"


def _sanitize(name: str) -> str:
    name = _NAME_OK.sub("_", name.replace("/", ".").replace(":", "_"))
    return name or "v"
