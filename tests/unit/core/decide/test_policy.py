"""Policy files: what `journey policy check` says about broken ones, and what loads."""

from __future__ import annotations

import subprocess
import sys
from textwrap import dedent

import pytest

from stream.core.decide import PolicyError
from tests.unit.core.decide.helpers import CATALOG, DEFAULT_POLICY, ROOT, policy_from

GOOD = """\
format: 1
name: good
actions:
  - id: promo
    category: marketing
    channels: [email]
    triggers: [{event: order_completed}]
"""

# (what is broken, the policy text, expected "line: path: message" fragments)
BROKEN = [
    ("yaml syntax", GOOD.replace("channels: [email]", "channels: [email"), [":7:", "YAML syntax"]),
    (
        "missing field",
        GOOD.replace("    category: marketing\n", ""),
        [":4: actions/0:", "category"],
    ),
    ("unknown channel", GOOD.replace("[email]", "[fax]"), [":6: actions/0/channels/0:", "fax"]),
    (
        "bad duration",
        GOOD + "    cooldown: 3 days\n",
        [":8: actions/0/cooldown: 3 days: not a duration; use a number with s, m, h or d"],
    ),
    ("format version", GOOD.replace("format: 1", "format: 2"), [":1: format:", "1 was expected"]),
    ("unknown top-level key", GOOD + "colour: blue\n", ["(root)", "colour"]),
    (
        "CEL syntax",
        GOOD + "    eligibility: customer.orders.count >\n",
        [":8: actions/0/eligibility:", "CEL does not compile"],
    ),
    (
        "CEL unknown variable",
        GOOD + "    suitability: shopper.vip\n",
        [":8: actions/0/suitability:", "unknown variable(s) shopper"],
    ),
    (
        "unknown event type",
        GOOD.replace("order_completed", "order_teleported"),
        [":7: actions/0/triggers/0/event:", "order_teleported"],
    ),
    (
        "timer except not on *",
        GOOD + "timers: [{name: t, delay: 1h, start: [{event: login, except: [search]}]}]\n",
        ["timers/0/start/0/except:", "only for event '*'"],
    ),
    (
        "timer except unknown type",
        GOOD + "timers: [{name: t, delay: 1h, start: [{event: '*', except: [teleport]}]}]\n",
        ["timers/0/start/0/except/0:", "teleport"],
    ),
    (
        "duplicate action",
        GOOD + GOOD.split("actions:\n")[1],
        [":8: actions/1/id:", "duplicate action id"],
    ),
    (
        "unknown time zone",
        GOOD + "contact_policy: {default_timezone: Mars/Olympus}\n",
        ["contact_policy/default_timezone:", "Mars/Olympus"],
    ),
    (
        "payload CEL",
        GOOD + "    payload: {x: 'event.properties.('}\n",
        ["actions/0/payload/x:", "CEL"],
    ),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [(t, f) for _, t, f in BROKEN], ids=[name for name, _, _ in BROKEN]
)
def test_broken_policies_are_refused_with_file_line_and_path(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    message = str(refused.value)
    assert message.startswith("test.yaml")
    for fragment in fragments:
        assert fragment in message, message


def test_all_problems_of_one_kind_are_reported_together() -> None:
    text = GOOD + "    eligibility: a.b\n    suitability: c.d\n"
    with pytest.raises(PolicyError) as refused:
        policy_from(text)
    assert len(refused.value.problems) == 2


def test_version_is_the_name_and_a_hash_of_the_content() -> None:
    a, b = policy_from(GOOD), policy_from(GOOD + "# a comment changes the version\n")
    assert a.version.startswith("good@") and a.version != b.version
    assert policy_from(GOOD).version == a.version


def test_shipped_policy_covers_every_stage_and_service() -> None:
    ids = {action.id for action in DEFAULT_POLICY.actions}
    assert {
        "welcome_content",
        "loyalty_signup_nudge",
        "app_download_invite",
        "getting_started_series",
        "complete_the_look",
        "replenishment_reminder",
        "vip_treatment",
        "review_request",
        "referral_request",
        "service_recovery",
        "service_follow_up",
    } <= ids


def run_check(*files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream", "policy", "check", *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_policy_check_command_exit_codes(tmp_path) -> None:
    good = run_check("policies/default.yaml")
    assert good.returncode == 0 and "OK, default@" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(dedent(GOOD.replace("[email]", "[fax]")))
    refused = run_check(str(bad))
    assert refused.returncode == 1
    assert f"{bad}:6: actions/0/channels/0:" in refused.stderr
    missing = run_check(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_catalog_compiles_the_policy_schema() -> None:
    assert "policy" in CATALOG.message_validators
