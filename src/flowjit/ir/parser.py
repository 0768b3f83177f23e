"""Parses the text `printer.py` writes back into a Func: `parse_func(print_func(f)) == f`."""
from __future__ import annotations

import re
from collections import ChainMap
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.graph.shape import TensorShape
from flowjit.ir.core import Func, Instr, Location, Param, Result, TensorType, Value


class IRParseError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")


_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+|\#[^\n]*)
  | (?P<nl>\n)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<func>@[A-Za-z0-9_.]+)
  | (?P<number>-?(?:\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+|\d+)(?![A-Za-z_]))
  | (?P<word>-?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>\^|[{}()\[\]<>,:=*?.])
""", re.VERBOSE)


def _tokenize(text: str) -> List[Tuple[str, str, int]]:
    tokens, line, pos = [], 1, 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:  # finditer skipped what no token matches
            break
        kind = m.lastgroup
        if kind == "nl":
            line += 1
        elif kind != "ws":
            tokens.append((kind, m.group(), line))
        pos = m.end()
    if pos < len(text):
        raise IRParseError(f"unexpected character {text[pos]!r}", line)
    tokens.append(("eof", "", line))
    return tokens


_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)")


def _unescape(text: str) -> str:
    """Undoes the printer's escapes: \\n \\t \\r \\xNN, and \\c for any other c."""
    def one(m: "re.Match[str]") -> str:
        code = m.group(1)
        if len(code) == 3:
            return chr(int(code[1:], 16))
        return _UNESCAPES.get(code, code)
    return _ESCAPE.sub(one, text)


def _as_bytes(text: str) -> bytes:
    """A string constant's element: the printer wrote each byte as one character."""
    return text.encode("latin-1")


def parse_func(text: str) -> Func:
    parser = _Parser(_tokenize(text))
    func = parser.func()
    parser.expect("eof")
    return func


class _Parser:
    def __init__(self, tokens) -> None:
        self.tokens = tokens
        self.i = 0

    # -- token helpers ---------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Tuple[str, str, int]:
        return self.tokens[self.i + offset]

    def next(self) -> Tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, text: Optional[str] = None) -> str:
        k, t, line = self.next()
        if k != kind or (text is not None and t != text):
            raise IRParseError(f"expected {text or kind}, found {t!r}", line)
        return t

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] in ("punct", "word"):
            self.i += 1
            return True
        return False

    def error(self, message: str) -> IRParseError:
        return IRParseError(message, self.peek()[2])

    # -- grammar ---------------------------------------------------------------------------
    def func(self) -> Func:
        self.expect("word", "func")
        name = self.expect("func")[1:]
        scope: Dict[str, Value] = {}
        self.expect("punct", "(")
        params = []
        while not self.accept(")"):
            value = self.define(scope)
            self.expect("punct", "{")
            role = self.expect("word")
            self.expect("punct", "=")
            key = self.string()
            self.expect("punct", "}")
            params.append(Param(value, role, key))
            self.accept(",")
        self.expect("punct", "{")
        body, results = self.block(scope, terminator="return")
        self.expect("punct", "}")
        return Func(name, params, body, results)

    def block(self, scope, terminator: str):
        body: List[Instr] = []
        while True:
            if self.peek()[1] == terminator:
                self.next()
                return body, self.terminator_results(scope, terminator)
            body.append(self.instr(scope))

    def terminator_results(self, scope, terminator: str):
        results = []
        while self.peek()[0] == "value":
            value = self.use(scope)
            if terminator == "return":
                self.expect("punct", "{")
                role = self.expect("word")
                self.expect("punct", "=")
                key = self.string()
                self.expect("punct", "}")
                results.append(Result(value, role, key))
            else:
                results.append(Result(value, "yield", ""))
            if not self.accept(","):
                break
        return results

    def instr(self, scope) -> Instr:
        results = []
        if self.peek()[0] == "value":
            while True:
                results.append(self.define(scope))
                if not self.accept(","):
                    break
            self.expect("punct", "=")
        op = self.expect("word")
        operands = []
        while self.peek()[0] == "value":
            operands.append(self.use(scope))
            if not self.accept(","):
                break
        attrs = {}
        loc = None
        regions = []
        if self.peek()[1] == "{" and self.peek(1)[0] == "word" and self.peek(2)[1] == "=":
            attrs = self.attr_dict()
        if self.peek()[1] == "loc":
            loc = self.location()
        if self.peek()[1] == "{":
            self.next()
            regions.append(self.region(scope))
            while self.peek()[1] == "}" and self.peek(1)[1] == "{" and self.peek(2)[1] == "^":
                self.next()
                self.next()
                regions.append(self.region(scope))
            self.expect("punct", "}")
        return Instr(op, operands, attrs, results, loc, regions=regions)

    def region(self, outer_scope) -> Func:
        """`^(params): body yield values` (the braces around it are the caller's)."""
        self.expect("punct", "^")
        self.expect("punct", "(")
        scope = ChainMap({}, outer_scope)  # the region's own names, over the function's
        params = []
        while not self.accept(")"):
            params.append(Param(self.define(scope), "operand", ""))
            self.accept(",")
        self.expect("punct", ":")
        body, results = self.block(scope, terminator="yield")
        return Func("region", params, body, results)

    def define(self, scope) -> Value:
        name = self.expect("value")[1:]
        self.expect("punct", ":")
        value = Value(self.type(), name)
        scope[name] = value
        return value

    def use(self, scope) -> Value:
        kind, text, line = self.next()
        if kind != "value":
            raise IRParseError(f"expected a value, found {text!r}", line)
        try:
            return scope[text[1:]]
        except KeyError:
            raise IRParseError(f"use of undefined value {text}", line) from None

    def type(self) -> TensorType:
        dtype = self.dtype()
        return TensorType(dtype, self.dims())

    def dtype(self) -> dtypes.DType:
        kind, text, line = self.next()
        try:
            return dtypes.from_ir_name(text)
        except ValueError:
            raise IRParseError(f"unknown element type {text!r}", line) from None

    def dims(self):
        self.expect("punct", "[")
        if self.accept("*"):
            self.expect("punct", "]")
            return None
        dims = []
        while not self.accept("]"):
            if self.accept("?"):
                dims.append(None)
            else:
                dims.append(int(self.expect("number")))
            self.accept(",")
        return tuple(dims)

    def attr_dict(self) -> Dict[str, Any]:
        self.expect("punct", "{")
        attrs = {}
        while not self.accept("}"):
            key = self.expect("word")
            self.expect("punct", "=")
            attrs[key] = self.attr()
            self.accept(",")
        return attrs

    def attr(self) -> Any:
        kind, text, line = self.peek()
        if kind == "string":
            return self.string()
        if kind == "number":
            self.next()
            return float(text) if any(c in text for c in ".e") else int(text)
        if kind == "punct" and text == "[":
            self.next()
            items = []
            while not self.accept("]"):
                items.append(self.attr())
                self.accept(",")
            return tuple(items)
        if kind == "word":
            self.next()
            if text in ("true", "false"):
                return text == "true"
            if text == "none":
                return None
            if text in ("nan", "inf", "-inf"):
                return float(text)
            if text == "shape":
                return self.shape_attr()
            if text == "dense":
                return self.dense()
            try:
                return dtypes.from_ir_name(text)
            except ValueError:
                raise IRParseError(f"unknown attribute value {text!r}", line) from None
        raise IRParseError(f"unexpected {text!r} in an attribute", line)

    def shape_attr(self) -> TensorShape:
        self.expect("punct", "<")
        if self.accept("*"):
            self.expect("punct", ">")
            return TensorShape(None)
        dims = []
        while not self.accept(">"):
            dims.append(None if self.accept("?") else int(self.expect("number")))
            self.accept(",")
        return TensorShape(dims)

    def dense(self) -> np.ndarray:
        self.expect("punct", "<")
        dtype = self.dtype()
        shape = self.dims()
        self.expect("punct", ",")
        if self.accept("splat"):
            value = self.attr()
            self.expect("punct", ">")
            if dtype is dtypes.string:
                value = _as_bytes(value)
            array = np.empty(shape, dtype=dtype.np_dtype)
            array.fill(value)
            return array
        if self.peek()[1] == ".":
            raise self.error("elided constant: this dump cannot be parsed back")
        values = self.attr()
        self.expect("punct", ">")
        if dtype is dtypes.string:
            array = np.empty(len(values), dtype=object)
            array[:] = [_as_bytes(v) for v in values]
            return array.reshape(shape)
        return np.array(values, dtype=dtype.np_dtype).reshape(shape)

    def string(self) -> str:
        text = self.expect("string")[1:-1]
        return _unescape(text) if "\\" in text else text

    def location(self) -> Location:
        self.expect("word", "loc")
        self.expect("punct", "(")
        parts = [self.string()]
        while self.accept(","):
            parts.append(self.string())
        self.expect("punct", ")")
        return Location(*parts)
