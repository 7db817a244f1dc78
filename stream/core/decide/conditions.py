"""How a policy condition is evaluated (the variables: ``stream.core.decide.variables``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cel

from stream.core.decide.policy import Condition


class ConditionError(Exception):
    """A condition failed at run time (missing field, wrong type, non-boolean result)."""


@dataclass
class Evaluator:
    """One decision's CEL environment, built once and reused by every condition."""

    context: Any  # cel.Context

    @classmethod
    def build(cls, variables: dict[str, Any]) -> Evaluator:
        """An evaluator over these variables."""
        return cls(cel.Context(variables=variables))

    def value(self, condition: Condition) -> Any:
        """The result of an expression; raises ConditionError on a run-time failure."""
        try:
            return condition.program.execute(self.context)
        except Exception as exc:  # the CEL runtime raises KeyError, TypeError, RuntimeError
            raise ConditionError(f"{condition.path}: {type(exc).__name__}: {exc}") from None

    def holds(self, condition: Condition | None) -> bool:
        """True if the condition is absent or evaluates to true."""
        if condition is None:
            return True
        result = self.value(condition)
        if not isinstance(result, bool):
            raise ConditionError(f"{condition.path}: expected a bool, got {result!r}")
        return result

    def number(self, condition: Condition | None, default: float) -> float:
        """A numeric expression's value (ints accepted)."""
        if condition is None:
            return default
        result = self.value(condition)
        if isinstance(result, bool) or not isinstance(result, int | float):
            raise ConditionError(f"{condition.path}: expected a number, got {result!r}")
        return float(result)
