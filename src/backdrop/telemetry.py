"""CloudWatch metrics (Powertools, embedded metric format), one call per figure, each
flushed at once: a task that returns early has nothing left to flush. Powertools' metrics
module is imported on the first figure, not at a cold start. Namespace: the stack's
POWERTOOLS_METRICS_NAMESPACE; POWERTOOLS_METRICS_DISABLED silences them (the local stack)."""

from __future__ import annotations

from typing import Literal

Unit = Literal["Count", "Seconds"]


def emit(name: str, value: float, unit: Unit = "Count", *, provider: str | None = None) -> None:
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics()  # no state shared between figures or invocations
    if provider is not None:
        metrics.add_dimension(name="provider", value=provider)
    metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)
    metrics.flush_metrics()
