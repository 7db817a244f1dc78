"""The worker's current policy: loaded at start, reloaded on SIGHUP or file change.

A reload that fails keeps the last good policy (and says why in the log and metrics).
A reload keeps the journey versions of the policies before it: a run is pinned to the
version it entered.
Reloads happen on the event loop between micro-batches, so no event is dropped and a
batch is decided under one policy.
"""

from __future__ import annotations

import logging
from pathlib import Path

from stream.core.decide import Policy, PolicyError, load_policy
from stream.core.decide.policy import Problem
from stream.core.schemas import SchemaCatalog

log = logging.getLogger(__name__)


class PolicySource:
    """Holds the current policy and knows how to refresh it from its file."""

    def __init__(self, path: Path, catalog: SchemaCatalog) -> None:
        self.path = path
        self.catalog = catalog
        self._mtime_ns = self._stat()
        # invalid: the worker won't start
        self.text, self.current = self._load()
        self.failed_reloads = 0

    def _stat(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def _load(self) -> tuple[str, Policy]:
        """The file's text and the policy it holds; a PolicyError if it has none."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError([Problem(str(self.path), "", None, f"cannot read: {exc}")]) from None
        return text, load_policy(text, self.catalog, str(self.path))

    def reload(self) -> bool:
        """Load the file again; True if a new version is now current."""
        self._mtime_ns = self._stat()
        try:
            text, policy = self._load()
        except PolicyError as exc:
            self.failed_reloads += 1
            log.error("policy reload failed, keeping %s:\n%s", self.current.version, exc)
            return False
        if policy.version == self.current.version:
            return False
        log.info("policy reloaded: %s -> %s", self.current.version, policy.version)
        # customers already in a journey finish the version they entered
        self.text, self.current = text, policy.with_earlier_versions(self.current)
        return True

    def reload_if_changed(self) -> bool:
        """Reload when the file's modification time moved."""
        if self._stat() == self._mtime_ns:
            return False
        return self.reload()

    def remember(self, earlier: Policy) -> None:
        """Keep knowing the journey versions of an earlier policy (from the archive)."""
        self.current = self.current.with_earlier_versions(earlier)
