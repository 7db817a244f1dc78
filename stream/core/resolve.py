"""Identity resolution rules: which profile an identifier belongs to, and when profiles merge.

Pure. The resolve step keeps an alias table (token -> customer key) partitioned by
token; this module decides what a *link* (``token`` seen on the profile ``canonical``)
does to it:

- same: the token already resolves to that profile;
- linked: the token had no alias: it now points to ``canonical`` and the profile the
  token had of its own (an anonymous visitor's, say) merges into ``canonical``;
- relinked / redirected: the token pointed to another unknown profile: the stronger of
  the two profiles wins (a customer id beats a loyalty card beats an email, a phone and a
  cookie) and the weaker one merges into it, through a follow-up link;
- conflict: the token already belongs to another *known* customer: recorded and counted,
  never merged silently;
- non_merging: the policy marks the token (or its kind) as shared, e.g. a household
  phone: it never links profiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from stream.core.identity import is_known, kind_of, strength

DEFAULT_MAX_IDENTIFIERS = 20


class LinkOutcome(StrEnum):
    """What one link did (metrics label)."""

    SAME = "same"
    LINKED = "linked"
    RELINKED = "relinked"
    REDIRECTED = "redirected"
    CONFLICT = "conflict"
    NON_MERGING = "non_merging"


@dataclass(frozen=True, slots=True)
class IdentityRules:
    """The policy's ``identity`` section."""

    max_identifiers: int = DEFAULT_MAX_IDENTIFIERS
    non_merging_kinds: frozenset[str] = frozenset()
    non_merging_tokens: frozenset[str] = frozenset()

    def merges(self, token: str) -> bool:
        """False if the token is shared (by kind or by value) and must not link profiles."""
        return kind_of(token) not in self.non_merging_kinds and token not in self.non_merging_tokens


@dataclass(frozen=True, slots=True)
class Link:
    """The result of a link: the alias to write, the profile to merge, a link to follow."""

    outcome: LinkOutcome
    alias: str | None = None  # new alias of the token (None: unchanged)
    merge_from: str | None = None  # this profile merges into the link's canonical
    follow: tuple[str, str] | None = None  # (token, canonical): a link for another partition


def decide_link(token: str, canonical: str, current: str | None, rules: IdentityRules) -> Link:
    """What linking ``token`` to the profile ``canonical`` does, given its alias ``current``."""
    if not rules.merges(token):
        return Link(LinkOutcome.NON_MERGING)
    resolved = current if current is not None else token
    if resolved == canonical:
        return Link(LinkOutcome.SAME)
    if is_known(resolved) and is_known(canonical):
        return Link(LinkOutcome.CONFLICT)
    if strength(canonical) < strength(resolved):  # the new profile is the stronger one
        if current is None:
            return Link(LinkOutcome.LINKED, alias=canonical, merge_from=token)
        return Link(LinkOutcome.RELINKED, alias=canonical, follow=(resolved, canonical))
    return Link(LinkOutcome.REDIRECTED, follow=(canonical, resolved))


def bounded_links(
    linked: list[str], new: Iterable[str], limit: int
) -> tuple[list[str], list[str], list[str]]:
    """Add tokens to a profile's linked list (oldest first), evicting the oldest over ``limit``.

    Returns (the new list, the tokens added, the tokens evicted).
    """
    result = list(linked)
    added = [t for t in dict.fromkeys(new) if t not in result]
    result.extend(added)
    evicted = result[: max(0, len(result) - limit)]
    return result[len(evicted) :], added, evicted
