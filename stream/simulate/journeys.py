"""Deterministic generator of realistic multi-channel customer journeys (pure: no Kafka, no clock).

``generate_events`` yields an **infinite** stream of ingress events that satisfy the event
contract, ordered by ``occurred_at`` and interleaving all customers. Stop it with
``itertools.islice`` or by breaking out of the loop. All randomness comes from one
``random.Random(seed)``, so the same arguments always give the same sequence, byte for byte
(``orjson.dumps`` of each value included).

Timing model: ``mean_gap_ms`` is the average time between two consecutive events of the *same*
customer, idle time between journeys included. Events inside a journey are closer together
(a click stream) and the idle gap after a journey is drawn so that, in the long run, every
customer emits about one event per ``mean_gap_ms``. The whole stream therefore carries about
``customers / mean_gap_ms`` events per simulated millisecond, which is what the producer uses to
make simulated time track wall-clock time.

Journey mix (weights, for customers that are eligible):

* web shopping (28) and app shopping (12, once the app is installed): browse (page_view, search,
  product_view) -> add_to_cart (sometimes remove_from_cart) -> checkout_started ->
  order_completed, with abandonment after browsing, at the cart and at checkout;
* email engagement (22): email_delivered -> email_opened -> email_clicked, which often leads
  into a web shopping session; occasionally unsubscribed, or bounced (hard or soft) instead;
  nothing more is mailed after a hard bounce or an unsubscribe;
* app onboarding (12, after a first order, once): app_installed -> app_opened -> qr_scanned
  with placement ``parcel``;
* store visit (12, loyalty members): store_visit -> loyalty_scan -> store_purchase (often);
* call center (6): call_completed with a sentiment; negative calls often open a complaint
  (complaint_opened), most of which are resolved later (complaint_resolved, same case_id);
* product return (4, when something was bought): store_visit -> product_return;
* social media (8, customers with a social handle): a mention, a direct message or a
  reply to the brand (and, from a buyer, a review on Trustpilot) with a realistic mix of
  tone (45% positive, 30% neutral, 25% negative) and language (15% in the customer's own
  language, which the worker cannot score); the listening tool gives its own sentiment on
  40% of posts. Posts carry the author's handle only, so an author is an anonymous
  profile until the handle is linked: a support agent links it during a direct-message
  conversation, or the customer does (``handle_linked``), and the profiles merge. Most
  grievances of a linked customer (a negative post, a review rated 1-2) are settled by
  the community team later (``complaint_resolved`` on social, naming the case the post
  opened).

About 20% of customers start as anonymous web visitors identified only by ``anonymous_id``
("anon-<hex>"); they shop on the web and rarely check out as guests, and in about one web
session in six they sign up: a ``login`` (method ``signup``) carrying both their new
``customer_id`` and the cookie, after which they are known customers (identity
resolution merges the two profiles).

Offline and online identities: a loyalty member's card scan at the till carries the
customer id and the card number, the store purchase that follows only the card; a
verified call carries the customer id and the caller's phone number (``+33 6 ...``), a
complaint only the phone number. About 35% of customers (anonymous visitors included) have a
social handle on one network (``x:@Shopper_000123``, sometimes spelt ``twitter:@shopper_000123``).
Known customers are "C%06d" (the number is the customer's index, 1-based); 70% of them are
loyalty members ("L%06d", same number, sent on store events) and half share their raw e-mail
address ("c000123@example.com") on email events. Most events carry a ``context`` with the
customer's IANA time zone, locale and consent (email true until unsubscribed, sms per customer,
push true).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CHANNELS: tuple[str, ...] = ("web", "app", "email", "store", "call_center", "social")
CURRENCY = "EUR"
SOURCE = "simulator"
SHOP_URL = "https://shop.example.com"

ANONYMOUS_SHARE = 0.2
SIGNUP_SHARE = 0.15
LOYALTY_SHARE = 0.7
SHARES_EMAIL_SHARE = 0.5
CONTEXT_SHARE = 0.92
SMS_CONSENT_SHARE = 0.6
SOCIAL_SHARE = 0.35
TOOL_SENTIMENT_SHARE = 0.4  # posts the listening tool scores itself
FOREIGN_POST_SHARE = 0.15  # posts in the customer's own language, when it is not English

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One generated ingress event with its channel, Kafka key and event time."""

    channel: str
    key: bytes
    value: dict[str, Any]
    occurred_at_ms: int


@dataclass(frozen=True, slots=True)
class Product:
    """One catalogue product."""

    product_id: str
    name: str
    category: str
    price: float


_CATALOGUE_SPEC: dict[str, tuple[tuple[str, float], ...]] = {
    "shoes": (
        ("Trail Runner", 129.95),
        ("City Sneaker", 89.95),
        ("Leather Chelsea Boot", 179.00),
        ("Canvas Slip-On", 49.95),
        ("Hiking Boot", 159.00),
        ("Court Classic", 99.95),
        ("Suede Loafer", 119.00),
        ("Rain Boot", 69.95),
        ("Running Flat", 139.95),
        ("Wool Slipper", 39.95),
    ),
    "outerwear": (
        ("Down Parka", 249.00),
        ("Rain Shell", 149.95),
        ("Wool Overcoat", 299.00),
        ("Denim Jacket", 99.95),
        ("Fleece Mid-Layer", 69.95),
        ("Quilted Vest", 79.95),
        ("Trench Coat", 229.00),
        ("Softshell Jacket", 129.00),
        ("Bomber Jacket", 119.95),
        ("Packable Windbreaker", 59.95),
    ),
    "accessories": (
        ("Leather Belt", 45.00),
        ("Wool Scarf", 39.95),
        ("Knit Beanie", 24.95),
        ("Canvas Tote", 34.95),
        ("Leather Wallet", 59.00),
        ("Sunglasses", 89.00),
        ("Travel Backpack", 119.00),
        ("Touchscreen Gloves", 29.95),
        ("Silk Tie", 49.00),
        ("Crossbody Bag", 79.95),
    ),
    "beauty": (
        ("Hydrating Serum", 34.50),
        ("Daily Moisturiser", 24.95),
        ("Mineral Sunscreen", 19.95),
        ("Clay Face Mask", 14.95),
        ("Eau de Parfum", 79.00),
        ("Lip Balm Trio", 9.95),
        ("Night Cream", 39.00),
        ("Shampoo Bar", 12.50),
        ("Body Lotion", 16.95),
        ("Beard Oil", 18.00),
    ),
    "home": (
        ("Linen Duvet Cover", 129.00),
        ("Scented Candle", 22.95),
        ("Ceramic Vase", 39.95),
        ("Throw Blanket", 59.95),
        ("Bath Towel Set", 49.95),
        ("Table Lamp", 89.00),
        ("Cushion Cover", 19.95),
        ("Stoneware Mug Set", 29.95),
        ("Wall Mirror", 119.00),
        ("Storage Basket", 24.95),
    ),
}


def _build_catalogue() -> tuple[Product, ...]:
    """Number the catalogue spec into products P0001..P0050."""
    products: list[Product] = []
    for category, items in _CATALOGUE_SPEC.items():
        for name, price in items:
            products.append(Product(f"P{len(products) + 1:04d}", name, category, price))
    return tuple(products)


PRODUCTS: tuple[Product, ...] = _build_catalogue()
CATEGORIES: tuple[str, ...] = tuple(_CATALOGUE_SPEC)
PRODUCTS_BY_CATEGORY: dict[str, tuple[Product, ...]] = {
    category: tuple(p for p in PRODUCTS if p.category == category) for category in CATEGORIES
}

_TIMEZONES: tuple[tuple[str, str], ...] = (
    ("Europe/Amsterdam", "nl-NL"),
    ("Europe/Berlin", "de-DE"),
    ("Europe/Paris", "fr-FR"),
    ("Europe/Madrid", "es-ES"),
    ("Europe/London", "en-GB"),
    ("Europe/Dublin", "en-IE"),
)
_STORES: tuple[str, ...] = tuple(f"S{n:03d}" for n in range(1, 13))
_REFERRERS: tuple[str, ...] = (
    "https://www.google.com/",
    "https://www.instagram.com/",
    "https://www.bing.com/",
    "direct",
    "https://www.pinterest.com/",
)
_LOGIN_METHODS: tuple[str, ...] = ("password", "google", "apple", "magic_link")
_EMAIL_CAMPAIGNS: tuple[str, ...] = (
    "weekly_newsletter",
    "new_arrivals",
    "seasonal_sale",
    "loyalty_points",
    "back_in_stock",
)
_PUSH_CAMPAIGNS: tuple[str, ...] = ("flash_sale", "price_drop", "order_update", "new_in")
_CALL_REASONS: tuple[str, ...] = (
    "order_status",
    "delivery_delay",
    "return_request",
    "billing",
    "product_question",
    "account",
)
_RETURN_REASONS: tuple[str, ...] = ("wrong_size", "damaged", "not_as_described", "changed_mind")
_RESOLUTIONS: tuple[str, ...] = ("refund", "replacement", "voucher", "explanation")
_SOCIAL_PLATFORMS: tuple[str, ...] = ("x", "instagram", "facebook", "tiktok")
_ITEMS: dict[str, str] = {
    "shoes": "pair of shoes",
    "outerwear": "jacket",
    "accessories": "bag",
    "beauty": "serum",
    "home": "candle",
}
# What customers write, by tone: VADER reads each English one with that tone (a unit
# test holds them to it), so a post the tool does not score gets the intended sentiment.
SOCIAL_TEXTS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Love my new {item}! Best purchase this year 😍",
        "Huge thanks to @shop for the quick delivery, great service!",
        "The {item} is amazing, so happy with it",
        "Just got my {item}, perfect fit and lovely quality",
    ),
    "neutral": (
        "Do you ship the {item} to Belgium?",
        "Is the {item} available in size M?",
        "When does the winter sale start?",
        "Can I return the {item} in a store?",
    ),
    "negative": (
        "Still waiting for my {item} after three weeks. Worst service ever.",
        "My {item} arrived broken and nobody answers. Really disappointed.",
        "Terrible experience with @shop, never again.",
        "The {item} fell apart after two days, awful quality",
    ),
}
FOREIGN_TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "positive": "Geweldige service!",
        "neutral": "Wanneer is de uitverkoop?",
        "negative": "Mijn pakket is nog steeds niet geleverd.",
    },
    "de": {
        "positive": "Tolle Qualität, danke!",
        "neutral": "Wann beginnt der Sale?",
        "negative": "Die Lieferung ist viel zu spät.",
    },
    "fr": {
        "positive": "J'adore ma commande, merci !",
        "neutral": "Quand commencent les soldes ?",
        "negative": "Toujours pas de colis après trois semaines.",
    },
    "es": {
        "positive": "¡Me encanta mi pedido!",
        "neutral": "¿Cuándo empiezan las rebajas?",
        "negative": "El pedido llegó roto.",
    },
}
_SCORES: dict[str, tuple[float, float]] = {
    "positive": (0.3, 0.95),
    "neutral": (-0.04, 0.04),
    "negative": (-0.95, -0.3),
}


@dataclass(slots=True)
class _Purchase:
    """A bought line that can still be returned."""

    order_id: str
    product: Product
    quantity: int


@dataclass(slots=True)
class _Customer:
    """Profile and evolving state of one simulated customer."""

    customer_id: str | None
    anonymous_id: str | None
    loyalty_id: str | None
    shared_email: str | None
    timezone: str
    locale: str
    sms_consent: bool
    web_device: str
    app_platform: str
    home_store: str
    favourite_category: str
    email_consent: bool = True
    email_reachable: bool = True
    has_app: bool = False
    orders: int = 0
    last_order_id: str | None = None
    number: int = 0
    phone: str | None = None
    social_handle: str | None = None  # <platform>:<handle>, as the listening tool spells it
    handle_linked: bool = False
    returnable: list[_Purchase] = field(default_factory=list)

    @property
    def platform(self) -> str:
        """The network of the customer's handle."""
        platform = (self.social_handle or "x:").partition(":")[0]
        return "x" if platform == "twitter" else platform

    @property
    def key(self) -> bytes:
        """Kafka key: the customer id if known, else the anonymous id."""
        return (self.customer_id or self.anonymous_id or "").encode()


@dataclass(slots=True)
class _Step:
    """One planned event, waiting in the queue until its time comes."""

    at_ms: int
    channel: str
    type: str
    customer: dict[str, str]
    properties: dict[str, Any]
    context: dict[str, Any] | None
    key: bytes


def format_timestamp(ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds and Z, e.g. 2026-11-23T10:15:00.000Z."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def to_topic(prefix: str, channel: str) -> str:
    """Ingress topic of a channel, e.g. ``to_topic("cjo.", "web") == "cjo.events.web"``."""
    return f"{prefix}events.{channel}"


def generate_events(
    customers: int,
    seed: int,
    start_ms: int,
    mean_gap_ms: int = 60_000,
    *,
    step_ms: int | None = None,
    lapse_share: float = 0.0,
) -> Iterator[SimulatedEvent]:
    """Infinite, deterministic, time-ordered stream of contract-valid journey events.

    ``step_ms`` fixes the scale of the waits *inside* a journey (a click stream takes
    minutes whatever the traffic); by default they scale with ``mean_gap_ms``.
    ``lapse_share`` is the chance that a customer who has bought goes quiet for 31 to 60
    days after a journey (churn, so that win-back timers have someone to win back).
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if mean_gap_ms < 1:
        raise ValueError(f"mean_gap_ms must be at least 1, got {mean_gap_ms}")
    if start_ms < 0:
        raise ValueError(f"start_ms must not be negative, got {start_ms}")
    simulation = _Simulation(customers, seed, start_ms, mean_gap_ms)
    simulation.step_ms = step_ms or mean_gap_ms
    simulation.lapse_share = lapse_share
    return simulation.run()


class _Journey:
    """Builds one journey: a timeline of planned events for one customer."""

    def __init__(self, sim: _Simulation, who: _Customer, start_ms: int) -> None:
        self.sim = sim
        self.rng = sim.rng
        self.who = who
        self.start_ms = start_ms
        self.now = start_ms
        self.steps: list[_Step] = []
        self.deferred: list[_Step] = []

    def emit(
        self, channel: str, type_: str, properties: dict[str, Any], *, wait: float = 0.2
    ) -> None:
        """Plan an event after about ``wait`` mean gaps (the first one starts the journey)."""
        if self.steps:
            self.now += self.sim.step_gap(wait)
        self.steps.append(self._step(self.now, channel, type_, properties))

    def defer(self, channel: str, type_: str, properties: dict[str, Any], *, wait: float) -> None:
        """Plan an event long after now that does not hold up the customer's next journey."""
        at_ms = self.now + self.sim.gap(wait)
        self.deferred.append(self._step(at_ms, channel, type_, properties))

    def _step(self, at_ms: int, channel: str, type_: str, properties: dict[str, Any]) -> _Step:
        """Freeze identity and context as they are when the event is planned."""
        who = self.who
        return _Step(
            at_ms=at_ms,
            channel=channel,
            type=type_,
            customer=self.sim.identity(who, channel, type_),
            properties=properties,
            context=self.sim.context(who, channel),
            key=who.key,
        )


class _Simulation:
    """Priority queue of planned events and journey starts, drained in time order."""

    def __init__(self, customers: int, seed: int, start_ms: int, mean_gap_ms: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.mean_gap_ms = mean_gap_ms
        self.step_ms = mean_gap_ms
        self.lapse_share = 0.0
        self.queue: list[tuple[int, int, _Customer | _Step]] = []
        self.sequence = 0
        self.emitted = 0
        self.orders = 0
        self.cases = 0
        self.posts = 0
        stagger_ms = 5 * mean_gap_ms
        for index in range(1, customers + 1):
            who = self._new_customer(index)
            self._push(start_ms + self.rng.randrange(stagger_ms), who)

    def run(self) -> Iterator[SimulatedEvent]:
        """Drain the queue forever: plan a journey when one is due, yield events when due."""
        while self.queue:
            at_ms, _, item = heapq.heappop(self.queue)
            if isinstance(item, _Customer):
                self._plan_journey(item, at_ms)
            else:
                yield self._materialise(item)

    def gap(self, scale: float) -> int:
        """Random exponential gap of about ``scale`` mean gaps, at least 1 ms."""
        return max(1, round(self.rng.expovariate(1.0) * scale * self.mean_gap_ms))

    def step_gap(self, scale: float) -> int:
        """Random gap between two events of one journey: about ``scale`` step units."""
        return max(1, round(self.rng.expovariate(1.0) * scale * self.step_ms))

    def next_order_id(self) -> str:
        """Unique, deterministic order id."""
        self.orders += 1
        return f"ord-{self.seed}-{self.orders}"

    def next_case_id(self) -> str:
        """Unique, deterministic complaint case id."""
        self.cases += 1
        return f"case-{self.seed}-{self.cases}"

    def next_post_id(self) -> str:
        """Unique, deterministic id of a social post."""
        self.posts += 1
        return f"{self.seed}{self.posts:08d}"

    def identity(self, who: _Customer, channel: str, type_: str = "") -> dict[str, str]:
        """The envelope's customer object as the given channel knows the customer."""
        if channel == "social" and type_ in {"mention", "direct_message", "reply"}:
            return {"social_handle": who.social_handle or ""}  # the listening tool's view
        if type_ == "handle_linked" and who.customer_id is not None:
            return {"customer_id": who.customer_id, "social_handle": who.social_handle or ""}
        if who.customer_id is None:
            return {"anonymous_id": who.anonymous_id or ""}
        if type_ == "store_purchase" and who.loyalty_id is not None:
            return {"loyalty_id": who.loyalty_id}  # the till knows the card only
        if type_ == "complaint_opened" and who.phone is not None:
            return {"phone": who.phone}  # the caller's number, before verification
        if type_ == "login" and who.anonymous_id is not None:
            return {"customer_id": who.customer_id, "anonymous_id": who.anonymous_id}
        identity = {"customer_id": who.customer_id}
        if channel == "call_center" and who.phone is not None:
            identity["phone"] = who.phone
        if channel == "store" and who.loyalty_id is not None:
            identity["loyalty_id"] = who.loyalty_id
        if channel == "email" and who.shared_email is not None:
            identity["email"] = who.shared_email
        return identity

    def context(self, who: _Customer, channel: str) -> dict[str, Any] | None:
        """Optional context: time zone, locale, device and consent, on most events (not on
        social ones: a listening tool knows none of it)."""
        if self.rng.random() >= CONTEXT_SHARE or channel == "social":
            return None
        context: dict[str, Any] = {"timezone": who.timezone, "locale": who.locale}
        if channel == "web":
            context["device"] = who.web_device
        elif channel == "app":
            context["device"] = who.app_platform
        context["consent"] = {"email": who.email_consent, "sms": who.sms_consent, "push": True}
        return context

    def _new_customer(self, index: int) -> _Customer:
        """Draw one customer's profile."""
        rng = self.rng
        anonymous = rng.random() < ANONYMOUS_SHARE
        timezone, locale = rng.choice(_TIMEZONES)
        handle = None
        if rng.random() < SOCIAL_SHARE:
            platform = rng.choice(_SOCIAL_PLATFORMS)
            handle = f"{platform}:@Shopper_{index:06d}"
            if platform == "x" and rng.random() < 0.3:  # the same account, spelt otherwise
                handle = f"twitter:@shopper_{index:06d}"
        return _Customer(
            customer_id=None if anonymous else f"C{index:06d}",
            anonymous_id=f"anon-{rng.getrandbits(64):016x}" if anonymous else None,
            loyalty_id=f"L{index:06d}" if not anonymous and rng.random() < LOYALTY_SHARE else None,
            shared_email=(
                f"c{index:06d}@example.com"
                if not anonymous and rng.random() < SHARES_EMAIL_SHARE
                else None
            ),
            timezone=timezone,
            locale=locale,
            sms_consent=rng.random() < SMS_CONSENT_SHARE,
            web_device=rng.choice(("desktop", "mobile", "mobile", "tablet")),
            app_platform=rng.choice(("ios", "android")),
            home_store=rng.choice(_STORES),
            favourite_category=rng.choice(CATEGORIES),
            number=index,
            phone=None if anonymous else f"+33 6 {index:08d}",
            social_handle=handle,
        )

    def _push(self, at_ms: int, item: _Customer | _Step) -> None:
        """Queue an item; the sequence number keeps ties in insertion order."""
        self.sequence += 1
        heapq.heappush(self.queue, (at_ms, self.sequence, item))

    def _plan_journey(self, who: _Customer, start_ms: int) -> None:
        """Plan the customer's next journey and schedule the journey after it."""
        journey = _Journey(self, who, start_ms)
        _choose_journey(self.rng, who)(journey)
        for step in journey.steps + journey.deferred:
            self._push(step.at_ms, step)
        planned = len(journey.steps) + len(journey.deferred)
        busy_ms = journey.now - start_ms
        idle_mean_ms = max(planned * self.mean_gap_ms - busy_ms, self.mean_gap_ms // 2, 1)
        idle_ms = max(1, round(self.rng.expovariate(1.0) * idle_mean_ms))
        if self.lapse_share and who.orders > 0 and self.rng.random() < self.lapse_share:
            idle_ms = self.rng.randrange(31 * DAY_MS, 60 * DAY_MS)
        self._push(journey.now + idle_ms, who)

    def _materialise(self, step: _Step) -> SimulatedEvent:
        """Turn a due step into an event with the next event id."""
        self.emitted += 1
        value: dict[str, Any] = {
            "event_id": f"sim-{self.seed}-{self.emitted}",
            "type": step.type,
            "channel": step.channel,
            "occurred_at": format_timestamp(step.at_ms),
            "customer": step.customer,
            "properties": step.properties,
        }
        if step.context is not None:
            value["context"] = step.context
        value["source"] = SOURCE
        return SimulatedEvent(step.channel, step.key, value, step.at_ms)


JourneyPlan = Callable[[_Journey], None]


def _choose_journey(rng: random.Random, who: _Customer) -> JourneyPlan:
    """Pick one of the journeys the customer is eligible for, by weight."""
    options: list[tuple[JourneyPlan, int]] = [(_web_shopping, 28)]
    if who.customer_id is not None:
        options.append((_call_center, 6))
        if who.email_reachable and who.email_consent:
            options.append((_email_engagement, 22))
        if who.has_app:
            options.append((_app_shopping, 12))
        elif who.orders > 0:
            options.append((_app_onboarding, 12))
        if who.loyalty_id is not None:
            options.append((_store_visit, 12))
        if who.returnable:
            options.append((_product_return, 4))
    if who.social_handle is not None:
        options.append((_social, 8))
    plans = [plan for plan, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(plans, weights=weights)[0]


def _web_shopping(j: _Journey) -> None:
    """Web session: landing page, maybe login, then browse and maybe buy."""
    _web_session(j, referrer=j.rng.choice(_REFERRERS))


def _web_session(j: _Journey, referrer: str, wait: float = 0.2) -> None:
    """Land on the shop from ``referrer``, log in sometimes, then shop."""
    j.emit(
        "web",
        "page_view",
        {"url": f"{SHOP_URL}/", "title": "Home", "referrer": referrer},
        wait=wait,
    )
    if j.who.customer_id is None and j.rng.random() < SIGNUP_SHARE:
        j.who.customer_id = f"C{j.who.number:06d}"  # a visitor signs up: now known
        j.emit("web", "login", {"method": "signup"}, wait=0.1)
    elif j.who.customer_id is not None and j.rng.random() < 0.35:
        j.emit("web", "login", {"method": j.rng.choice(_LOGIN_METHODS)}, wait=0.1)
    _shop(j, "web")


def _app_shopping(j: _Journey) -> None:
    """App session, sometimes opened from a push, sometimes with an in-store or print QR scan."""
    rng = j.rng
    if rng.random() < 0.4:
        j.emit("app", "push_opened", {"campaign": rng.choice(_PUSH_CAMPAIGNS)})
    j.emit("app", "app_opened", {}, wait=0.01)
    if rng.random() < 0.1:
        placement = rng.choice(("store", "receipt", "print", "other"))
        code = f"{placement.upper()}-{rng.randrange(1, 10_000):04d}"
        j.emit("app", "qr_scanned", {"code": code, "placement": placement}, wait=0.05)
    _shop(j, "app")


def _shop(j: _Journey, channel: str) -> None:
    """Browse, then maybe fill a cart, check out and complete the order."""
    rng = j.rng
    category = j.who.favourite_category if rng.random() < 0.6 else rng.choice(CATEGORIES)
    viewed = _browse(j, channel, category)
    if rng.random() >= 0.55:
        return
    cart = _fill_cart(j, channel, viewed)
    if rng.random() < 0.3:
        return
    j.emit(channel, "checkout_started", {"cart_value": _cart_value(cart)}, wait=0.3)
    completes = 0.85 if j.who.customer_id is not None else 0.3
    if rng.random() >= completes:
        return
    order_id = j.sim.next_order_id()
    j.emit(channel, "order_completed", _order_properties(order_id, cart), wait=0.4)
    _record_order(j.who, order_id, cart)


def _browse(j: _Journey, channel: str, category: str) -> list[Product]:
    """A few browsing events; returns the products viewed (at least one)."""
    rng = j.rng
    viewed: list[Product] = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        if channel == "web" and roll < 0.2:
            _search(j, category)
        elif channel == "web" and roll < 0.35:
            url = f"{SHOP_URL}/c/{category}"
            j.emit("web", "page_view", {"url": url, "title": category.title()})
        else:
            viewed.append(_view_product(j, channel, category))
    if not viewed:
        viewed.append(_view_product(j, channel, category))
    return viewed


def _search(j: _Journey, category: str) -> None:
    """A web search for something in the category."""
    product = j.rng.choice(PRODUCTS_BY_CATEGORY[category])
    query = j.rng.choice((category, product.name.lower(), product.name.split()[-1].lower()))
    j.emit("web", "search", {"query": query, "results": j.rng.randint(0, 40)})


def _view_product(j: _Journey, channel: str, category: str) -> Product:
    """View a product, mostly from the category of interest."""
    rng = j.rng
    pool = PRODUCTS_BY_CATEGORY[category] if rng.random() < 0.75 else PRODUCTS
    product = rng.choice(pool)
    properties = {
        "product_id": product.product_id,
        "category": product.category,
        "price": product.price,
    }
    j.emit(channel, "product_view", properties)
    return product


def _fill_cart(j: _Journey, channel: str, viewed: list[Product]) -> list[tuple[Product, int]]:
    """Add one to three viewed products; sometimes take one out again."""
    rng = j.rng
    distinct = list(dict.fromkeys(viewed))
    chosen = rng.sample(distinct, k=min(len(distinct), rng.randint(1, 3)))
    cart: list[tuple[Product, int]] = []
    for product in chosen:
        quantity = 1 if rng.random() < 0.85 else 2
        j.emit(channel, "add_to_cart", _line(product, quantity), wait=0.15)
        cart.append((product, quantity))
    if len(cart) > 1 and rng.random() < 0.15:
        product, quantity = cart.pop(rng.randrange(len(cart)))
        removed = {"product_id": product.product_id, "quantity": quantity}
        j.emit(channel, "remove_from_cart", removed, wait=0.1)
    return cart


def _line(product: Product, quantity: int) -> dict[str, Any]:
    """An order or cart line."""
    return {
        "product_id": product.product_id,
        "quantity": quantity,
        "price": product.price,
        "category": product.category,
    }


def _cart_value(cart: list[tuple[Product, int]]) -> float:
    """Sum of price x quantity, rounded to cents."""
    return round(sum(product.price * quantity for product, quantity in cart), 2)


def _order_properties(order_id: str, cart: list[tuple[Product, int]]) -> dict[str, Any]:
    """Properties of order_completed / store_purchase (without store_id)."""
    main_product = max(cart, key=lambda line: line[0].price * line[1])[0]
    return {
        "order_id": order_id,
        "value": _cart_value(cart),
        "currency": CURRENCY,
        "category": main_product.category,
        "items": [_line(product, quantity) for product, quantity in cart],
    }


def _record_order(who: _Customer, order_id: str, cart: list[tuple[Product, int]]) -> None:
    """Remember the order for app onboarding and later returns (recent lines only)."""
    who.orders += 1
    who.last_order_id = order_id
    who.returnable.extend(_Purchase(order_id, product, quantity) for product, quantity in cart)
    del who.returnable[:-6]


def _email_engagement(j: _Journey) -> None:
    """Campaign mail: delivered or bounced; maybe opened, clicked (into the shop), unsubscribed."""
    rng, who = j.rng, j.who
    campaign = rng.choice(_EMAIL_CAMPAIGNS)
    if rng.random() < 0.03:
        hard = rng.random() < 0.3
        j.emit(
            "email", "bounced", {"bounce_type": "hard" if hard else "soft", "campaign": campaign}
        )
        who.email_reachable = not hard
        return
    j.emit("email", "email_delivered", {"campaign": campaign})
    if rng.random() >= 0.45:
        return
    j.emit("email", "email_opened", {"campaign": campaign}, wait=2.0)
    if rng.random() < 0.03:
        who.email_consent = False
        j.emit("email", "unsubscribed", {"list": campaign, "campaign": campaign}, wait=0.05)
        return
    if rng.random() >= 0.35:
        return
    product = rng.choice(PRODUCTS)
    url = f"{SHOP_URL}/p/{product.product_id}?utm_source=email&utm_campaign={campaign}"
    j.emit("email", "email_clicked", {"url": url, "campaign": campaign}, wait=0.1)
    if rng.random() < 0.6:
        _web_session(j, referrer=f"email:{campaign}", wait=0.02)


def _app_onboarding(j: _Journey) -> None:
    """After a first order: install the app, open it, scan the QR code on the parcel."""
    who = j.who
    j.emit("app", "app_installed", {"platform": who.app_platform})
    j.emit("app", "app_opened", {}, wait=0.05)
    who.has_app = True
    if j.rng.random() < 0.7 and who.last_order_id is not None:
        code = f"PARCEL-{who.last_order_id}"
        j.emit("app", "qr_scanned", {"code": code, "placement": "parcel"}, wait=0.1)


def _store_visit(j: _Journey) -> None:
    """Loyalty member visits a store, scans the card and usually buys something."""
    rng, who = j.rng, j.who
    store_id = who.home_store if rng.random() < 0.8 else rng.choice(_STORES)
    j.emit("store", "store_visit", {"store_id": store_id})
    j.emit("store", "loyalty_scan", {"store_id": store_id}, wait=0.2)
    if rng.random() >= 0.75:
        return
    category = who.favourite_category if rng.random() < 0.5 else rng.choice(CATEGORIES)
    products = rng.sample(PRODUCTS_BY_CATEGORY[category], k=rng.randint(1, 3))
    cart = [(product, 1 if rng.random() < 0.9 else 2) for product in products]
    order_id = j.sim.next_order_id()
    properties = {"store_id": store_id, **_order_properties(order_id, cart)}
    j.emit("store", "store_purchase", properties, wait=0.3)
    _record_order(who, order_id, cart)


def _product_return(j: _Journey) -> None:
    """Bring a bought product back to a store."""
    rng, who = j.rng, j.who
    purchase = who.returnable.pop(rng.randrange(len(who.returnable)))
    store_id = who.home_store
    j.emit("store", "store_visit", {"store_id": store_id})
    properties = {
        "store_id": store_id,
        "product_id": purchase.product.product_id,
        "order_id": purchase.order_id,
        "value": round(purchase.product.price * purchase.quantity, 2),
        "reason": rng.choice(_RETURN_REASONS),
    }
    j.emit("store", "product_return", properties, wait=0.1)


def _call_center(j: _Journey) -> None:
    """A call with a sentiment; unhappy callers often open a complaint, mostly resolved later."""
    rng = j.rng
    reason = rng.choice(_CALL_REASONS)
    sentiment = rng.choices(("positive", "neutral", "negative"), weights=(3, 5, 2))[0]
    call = {
        "reason": reason,
        "sentiment": sentiment,
        "duration_s": rng.randint(45, 1_200),
        "agent_id": f"A{rng.randint(1, 40):03d}",
    }
    j.emit("call_center", "call_completed", call)
    if rng.random() >= (0.45 if sentiment == "negative" else 0.03):
        return
    case_id = j.sim.next_case_id()
    severity = rng.choices(("low", "medium", "high"), weights=(3, 4, 2))[0]
    complaint = {"case_id": case_id, "reason": reason, "severity": severity}
    j.emit("call_center", "complaint_opened", complaint, wait=0.02)
    if rng.random() < 0.85:
        resolution = {"case_id": case_id, "resolution": rng.choice(_RESOLUTIONS)}
        j.defer("call_center", "complaint_resolved", resolution, wait=20.0)


def _social(j: _Journey) -> None:
    """A post about the brand; perhaps the handle linked; a grievance settled later."""
    rng, who = j.rng, j.who
    tone = rng.choices(("positive", "neutral", "negative"), weights=(45, 30, 25))[0]
    kinds = [("mention", 45), ("direct_message", 20), ("reply", 15)]
    if who.customer_id is not None and who.orders > 0:
        kinds.append(("review", 25))  # invited after an order: the review names the customer
    kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
    properties = _post_properties(j, kind, tone)
    j.emit("social", kind, properties)
    known = who.handle_linked or kind == "review"
    if who.customer_id is not None and not who.handle_linked:
        asked = kind == "direct_message" and rng.random() < 0.6
        if asked or rng.random() < 0.15:  # an agent in the conversation, or the customer
            linked_by = "agent" if asked else "customer"
            linked = {"linked_by": linked_by}
            if asked:
                linked["agent_id"] = f"A{rng.randint(1, 40):03d}"
            j.emit("social", "handle_linked", linked, wait=0.3)
            who.handle_linked = True
    # what ingest will read: a review's stars, else the tool's sentiment or an English text
    scored = kind == "review" or "sentiment" in properties or properties["language"] == "en"
    grievance = tone == "negative" and scored
    if known and grievance and rng.random() < 0.8:
        conversation = (
            properties["thread_id"] if kind == "direct_message" else properties["post_id"]
        )
        resolution = {
            "case_id": f"social-{properties['platform']}-{conversation}",
            "resolution": rng.choice(_RESOLUTIONS),
        }
        j.defer(
            rng.choice(("social", "social", "call_center")),
            "complaint_resolved",
            resolution,
            wait=15.0,
        )


def _post_properties(j: _Journey, kind: str, tone: str) -> dict[str, Any]:
    """A post's properties: where, what was written in which language, maybe the tool's score."""
    rng, who = j.rng, j.who
    post_id = j.sim.next_post_id()
    language = who.locale.split("-")[0]
    if language != "en" and rng.random() < FOREIGN_POST_SHARE:
        text = FOREIGN_TEXTS[language][tone]
    else:
        language = "en"
        item = _ITEMS[who.favourite_category]
        text = rng.choice(SOCIAL_TEXTS[tone]).format(item=item)
    platform = "trustpilot" if kind == "review" else who.platform
    properties: dict[str, Any] = {"platform": platform, "post_id": post_id}
    if kind == "direct_message":
        properties["thread_id"] = f"dm-{j.sim.seed}-{who.number}"  # one conversation each
    else:
        properties["url"] = f"https://{platform}.example/{post_id}"
    properties.update(text=text, language=language)
    if kind == "reply":
        properties["in_reply_to"] = f"brand-{rng.randrange(1, 60):03d}"
    elif kind == "review":
        stars = {"positive": (4, 5), "neutral": (3,), "negative": (1, 2)}[tone]
        properties["rating"] = rng.choice(stars)
    if rng.random() < TOOL_SENTIMENT_SHARE:
        properties["sentiment"] = tone
        properties["sentiment_score"] = round(rng.uniform(*_SCORES[tone]), 2)
    return properties
