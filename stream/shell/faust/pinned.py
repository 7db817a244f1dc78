"""The faust-streaming release the adaptations were written against, and the guard.

A mismatch refuses: ``require_pinned_faust`` raises ``UnsupportedFaust``, naming the
patch, and the worker does not start. See the package docstring for why.
"""

from __future__ import annotations

import faust

#: The faust-streaming release whose internals the patches copy, replace or read.
PINNED_FAUST = "0.15.3"

#: Where the upstream source of every patch is hashed (the review list of an upgrade).
UPSTREAM_TEST = "tests/unit/shell/faust/test_upstream_sources.py"


class UnsupportedFaust(RuntimeError):
    """The installed faust-streaming is not the one a patch was written against."""


def require_pinned_faust(patch: str) -> None:
    """Return when faust-streaming is the pinned release; raise ``UnsupportedFaust`` naming
    ``patch`` otherwise."""
    if faust.__version__ != PINNED_FAUST:
        raise UnsupportedFaust(
            f"{patch} patches faust-streaming {PINNED_FAUST} internals, but "
            f"{faust.__version__} is installed: refusing to run on a Faust it was not "
            f"checked against. Pin faust-streaming=={PINNED_FAUST}, or review every patch "
            f"against the new release ({UPSTREAM_TEST} names the upstream code that "
            f"changed) and then move PINNED_FAUST in {__name__}."
        )
