"""Email-provider webhooks mapped onto our outcomes contract (pure; see ``common``).

``PROVIDERS`` is the registry the collector serves at ``POST /webhooks/{name}``; each
provider verifies a call (``verify``) and maps its body (``outcomes``). Mapping tables,
signatures and what is ignored or dead-lettered: docs/webhooks.md.
"""

from __future__ import annotations

from stream.core.webhooks.common import (
    Ignored,
    IgnoreReason,
    WebhookBatch,
    WebhookProvider,
)
from stream.core.webhooks.mailgun import MAILGUN
from stream.core.webhooks.postmark import POSTMARK
from stream.core.webhooks.sendgrid import SENDGRID

PROVIDERS: dict[str, WebhookProvider] = {
    provider.name: provider for provider in (SENDGRID, MAILGUN, POSTMARK)
}

__all__ = ["PROVIDERS", "IgnoreReason", "Ignored", "WebhookBatch", "WebhookProvider"]
