"""The decision engine: policy-as-code, filters, arbitration, contact policy, explain records."""

from stream.core.decide.engine import condition_context, decide_event, decide_timer
from stream.core.decide.policy import Policy, PolicyError, load_policy, load_policy_file
from stream.core.decide.records import Action, Candidate, Decision, Reason, TriggerRef

__all__ = [
    "Action",
    "Candidate",
    "Decision",
    "Policy",
    "PolicyError",
    "Reason",
    "TriggerRef",
    "condition_context",
    "decide_event",
    "decide_timer",
    "load_policy",
    "load_policy_file",
]
