"""The worker's pipeline steps, one class each: read a batch, call the core, commit.

    ingest    cjo.events.<channel>     -> internal.identity-events   (stream.core.intake)
    outcomes  cjo.outcomes             -> internal.customer-events   (stream.core.intake)
    resolve   internal.identity-events -> internal.customer-events   (stream.core.routing)
    process   internal.customer-events -> actions, decisions, ...    (stream.core.fold)
    learn     internal.learning        -> internal.model             (stream.core.intake)

Each step builds a ``BatchResult`` in the core and hands it to ``Outputs.commit``
(``stream/shell/outputs.py``), the one place messages leave and state is written.
"""

from stream.shell.steps.batch import Step, StepContext, run_step
from stream.shell.steps.ingest import IngestStep
from stream.shell.steps.learn import LearnStep
from stream.shell.steps.outcomes import OutcomesStep
from stream.shell.steps.process import ProcessStep
from stream.shell.steps.resolve import ResolveStep

__all__ = [
    "IngestStep",
    "LearnStep",
    "OutcomesStep",
    "ProcessStep",
    "ResolveStep",
    "Step",
    "StepContext",
    "run_step",
]
