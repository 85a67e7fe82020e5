"""Human progress lines on stderr (stdout is kept for what scripts capture)."""

from __future__ import annotations

import sys


def say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
