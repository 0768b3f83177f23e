"""`tf.app.run(main=None, argv=None)`: parses the flags, then exits with `main(argv)`."""
from __future__ import annotations

import sys
from typing import Callable, List, Optional

from flowjit.platform import flags
from flowjit.platform.flags import FLAGS


def run(main: Optional[Callable[[List[str]], Optional[int]]] = None,
        argv: Optional[List[str]] = None) -> None:
    """Parses `argv` (default `sys.argv`) into `FLAGS` and calls `main` (default: the
    caller's module's `main`) with the program name and the arguments left; exits with its
    return value. A bad flag prints the error and the flags, and exits with status 2."""
    argv = list(sys.argv if argv is None else argv)
    program = argv[0] if argv else "program"
    try:
        rest = FLAGS(argv, known_only=True)
    except flags.FlagsError as e:
        print(f"{program}: {e}\n{FLAGS.help_text(program)}", file=sys.stderr)
        sys.exit(2)
    if main is None:
        main = sys.modules["__main__"].main
    sys.exit(main(rest))
