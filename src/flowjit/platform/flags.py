"""`tf.flags` / `tf.app.flags`: command-line flags defined where they are used.

    flags = tf.app.flags
    flags.DEFINE_integer("batch_size", 100, "examples per step")
    FLAGS = flags.FLAGS
    ... FLAGS.batch_size ...

Flags are parsed from `sys.argv` on the first read of a value (as TF1 did) or by `tf.app.run`.
Accepted forms: `--name=value`, `--name value`, `--flag` / `--noflag` for booleans, `--` to end
flags; `--help` prints every flag. Arguments that are not defined flags are left for `main`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence


class FlagsError(ValueError):
    """A bad flag definition or command-line value; the message names the flag."""


class UnparsedFlagAccessError(FlagsError):
    pass


@dataclass
class Flag:
    name: str
    default: Any
    help: str
    kind: str
    parse: Callable[[str], Any]
    value: Any = None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes", "y"):
        return True
    if lowered in ("false", "f", "0", "no", "n"):
        return False
    raise ValueError("not a boolean (true/false)")


def _parse_list(text: str) -> List[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class FlagValues:
    """`FLAGS`: each defined flag is an attribute."""

    def __init__(self) -> None:
        object.__setattr__(self, "_flags", {})
        object.__setattr__(self, "_parsed", False)

    def _define(self, flag: Flag) -> None:
        if flag.name in self._flags:
            raise FlagsError(f"The flag '{flag.name}' is defined twice")
        flag.value = flag.default
        self._flags[flag.name] = flag

    def __getattr__(self, name: str) -> Any:
        flags = object.__getattribute__(self, "_flags")
        if name not in flags:
            raise AttributeError(f"There is no flag named '{name}' (defined: "
                                 f"{', '.join(sorted(flags)) or 'none'})")
        if not self._parsed:
            self(sys.argv, known_only=True)
        return flags[name].value

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._flags:
            raise AttributeError(f"There is no flag named '{name}'")
        self._flags[name].value = value

    def __contains__(self, name: str) -> bool:
        return name in self._flags

    def is_parsed(self) -> bool:
        return self._parsed

    def mark_as_parsed(self) -> None:
        object.__setattr__(self, "_parsed", True)

    def flag_values_dict(self) -> Dict[str, Any]:
        return {name: flag.value for name, flag in self._flags.items()}

    def reset(self) -> None:
        """Every flag back to its default, not parsed (for tests)."""
        for flag in self._flags.values():
            flag.value = flag.default
        object.__setattr__(self, "_parsed", False)

    def __call__(self, argv: Sequence[str], known_only: bool = False) -> List[str]:
        """Parses `argv` (argv[0] is the program); returns argv[0] and the arguments that are
        not flags. Unknown `--flags` are an error unless `known_only`."""
        argv = list(argv)
        rest = argv[:1]
        i = 1
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                rest.extend(argv[i:])
                break
            if not arg.startswith("-") or arg == "-":
                rest.append(arg)
                continue
            name, has_value, text = arg.lstrip("-").partition("=")
            if name in ("help", "helpfull", "h") and not has_value:
                print(self.help_text(argv[0] if argv else "program"))
                sys.exit(0)
            flag = self._flags.get(name)
            if flag is None and name.startswith("no") and not has_value:
                negated = self._flags.get(name[2:])
                if negated is not None and negated.kind == "bool":
                    negated.value = False
                    continue
            if flag is None:
                if known_only:
                    rest.append(arg)
                    continue
                raise FlagsError(f"Unknown command line flag '{name}'")
            if flag.kind == "bool" and not has_value:
                flag.value = True
                continue
            if not has_value:
                if i >= len(argv):
                    raise FlagsError(f"Flag --{name} needs a value")
                text = argv[i]
                i += 1
            try:
                flag.value = flag.parse(text)
            except ValueError as e:
                raise FlagsError(f"Flag --{name}={text!r}: {e}") from None
        self.mark_as_parsed()
        return rest

    def help_text(self, program: str) -> str:
        lines = [f"usage: {program} [flags]", "", "flags:"]
        for name, flag in sorted(self._flags.items()):
            default = ",".join(flag.default) if flag.kind == "list" else flag.default
            lines.append(f"  --{name}: {flag.help} (default: {default!r})")
        return "\n".join(lines)


FLAGS = FlagValues()


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError("not an integer") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number") from None


def _definer(kind: str, parse: Callable[[str], Any]):
    def define(name: str, default: Any, help: Optional[str] = None,
               flag_values: FlagValues = FLAGS, **kwargs: Any) -> None:
        if isinstance(default, str) and kind != "string":
            try:
                default = parse(default)
            except ValueError as e:
                raise FlagsError(f"Default of flag '{name}' ({default!r}): {e}") from None
        if kind == "list" and default is not None and not isinstance(default, str):
            default = list(default)
        flag_values._define(Flag(name, default, help or "", kind, parse))
    define.__name__ = f"DEFINE_{kind}"
    return define


DEFINE_string = _definer("string", str)
DEFINE_integer = _definer("integer", _integer)
DEFINE_float = _definer("float", _float)
DEFINE_boolean = _definer("bool", _parse_bool)
DEFINE_bool = DEFINE_boolean
DEFINE_list = _definer("list", _parse_list)


def DEFINE_enum(name: str, default: str, enum_values: Sequence[str], help: Optional[str] = None,
                flag_values: FlagValues = FLAGS) -> None:
    def parse(text: str) -> str:
        if text not in enum_values:
            raise ValueError(f"should be one of {', '.join(enum_values)}")
        return text
    flag_values._define(Flag(name, default, help or "", "enum", parse))
