"""`python -m flowjit dump ARGS`: flowjit's command-line tools (the same as `flowjit-dump`)."""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from flowjit import cli

_USAGE = "usage: python -m flowjit dump TARGET [options]   (see: python -m flowjit dump -h)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "dump":
        print(_USAGE, file=sys.stderr)
        return 2
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
