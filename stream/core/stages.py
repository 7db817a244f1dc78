"""The five journey stages and the rules that move a customer between them.

- awareness -> acquisition: intent or identification (add_to_cart, checkout_started,
  login, loyalty_scan, app_installed)
- awareness, acquisition -> onboarding: the first purchase (web/app order or store purchase)
- onboarding -> engagement: a second purchase, or using the app (app_opened, qr_scanned)
- onboarding, engagement -> advocacy: praise in public from a buyer with no open service
  case: a positive mention or reply, or a review rated 4 or 5 (``stream.core.social``);
  recommending the brand in public is what an advocate does, so it counts as much as the
  five purchases below
- engagement -> advocacy: five or more purchases and no open service case
- advocacy -> engagement: a complaint is opened, or a grievance on social media (a
  negative post, a review rated 1 or 2) opens a case (journeys are not a straight line)

A stage never falls below onboarding once the customer has bought.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Journey stage, in funnel order."""

    AWARENESS = "awareness"
    ACQUISITION = "acquisition"
    ONBOARDING = "onboarding"
    ENGAGEMENT = "engagement"
    ADVOCACY = "advocacy"


INTENT_EVENTS: frozenset[str] = frozenset(
    {"add_to_cart", "checkout_started", "login", "loyalty_scan", "app_installed"}
)
PURCHASE_EVENTS: frozenset[str] = frozenset({"order_completed", "store_purchase"})
APP_USE_EVENTS: frozenset[str] = frozenset({"app_opened", "qr_scanned"})
ADVOCACY_MIN_ORDERS = 5


def next_stage(
    current: Stage,
    event_type: str,
    order_count: int,
    open_cases: int,
    *,
    praise: bool = False,
    case_opened: bool = False,
) -> Stage:
    """Stage after an event, given the order count and open cases after applying it.

    ``praise``: the event is praise in public (``social.is_praise``); ``case_opened``: it
    opened a service case (a complaint, or a grievance on social media).
    """
    if current is Stage.ADVOCACY:
        opened = case_opened or event_type == "complaint_opened"
        return Stage.ENGAGEMENT if opened else current
    if current in (Stage.AWARENESS, Stage.ACQUISITION):
        if event_type in PURCHASE_EVENTS and order_count >= 1:
            return Stage.ONBOARDING
        if current is Stage.AWARENESS and event_type in INTENT_EVENTS:
            return Stage.ACQUISITION
        return current
    if praise and order_count >= 1 and open_cases == 0:
        return Stage.ADVOCACY
    if current is Stage.ONBOARDING:
        second_purchase = event_type in PURCHASE_EVENTS and order_count >= 2
        if second_purchase or event_type in APP_USE_EVENTS:
            return Stage.ENGAGEMENT
        return current
    if order_count >= ADVOCACY_MIN_ORDERS and open_cases == 0:
        return Stage.ADVOCACY
    return current
