"""Test data shared by the schema and simulator tests: what the contract promises."""

from __future__ import annotations

# The minimum the contract promises: per channel, each event type and its required properties.
_CART = {
    "product_view": {"product_id"},
    "add_to_cart": {"product_id", "price"},
    "remove_from_cart": {"product_id"},
    "checkout_started": set(),
    "order_completed": {"order_id", "value"},
}
CONTRACT_TYPES: dict[str, dict[str, set[str]]] = {
    "web": {"page_view": {"url"}, "search": {"query"}, "login": set(), **_CART},
    "app": {
        "app_installed": set(),
        "app_opened": set(),
        "push_opened": set(),
        "qr_scanned": {"code"},
        **_CART,
    },
    "email": {
        "email_delivered": set(),
        "email_opened": set(),
        "email_clicked": set(),
        "unsubscribed": set(),
        "bounced": {"bounce_type"},
    },
    "store": {
        "store_visit": {"store_id"},
        "loyalty_scan": {"store_id"},
        "store_purchase": {"store_id", "order_id", "value"},
        "product_return": {"store_id", "product_id"},
    },
    "call_center": {
        "call_completed": {"reason", "sentiment"},
        "complaint_opened": {"case_id", "reason"},
        "complaint_resolved": {"case_id"},
    },
    "social": {
        "mention": {"platform", "post_id"},
        "review": {"platform", "post_id", "rating"},
        "direct_message": {"platform", "post_id", "thread_id"},
        "reply": {"platform", "post_id"},
        "handle_linked": {"linked_by"},
        "complaint_resolved": {"case_id"},
    },
}
