"""The decision engine: policy-as-code, filters, arbitration, contact policy, explain records."""

from stream.core.decide.engine import decide_event
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
    "decide_event",
    "load_policy",
    "load_policy_file",
]
