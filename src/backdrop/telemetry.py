"""CloudWatch metrics (Powertools, embedded metric format), one call per figure, each
flushed at once: a task that returns early has nothing left to flush. Powertools' metrics
module is imported on the first figure, not at a cold start. Namespace: the stack's
POWERTOOLS_METRICS_NAMESPACE; POWERTOOLS_METRICS_DISABLED silences them (the local stack).

Every figure is recorded twice in one line: as the stack's total (dimension `service`
only, what the alarms watch) and, where given, by its dimensions (provider, error code:
what the dashboard breaks it down by)."""

from __future__ import annotations

from typing import Literal

Unit = Literal["Count", "Seconds"]


def emit(name: str, value: float, unit: Unit = "Count", **dimensions: str | None) -> None:
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics()  # no state shared between figures or invocations
    given = {key: value for key, value in dimensions.items() if value}
    if given:
        metrics.add_dimensions(**given)
    metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)
    metrics.flush_metrics()


def provider_error(provider: str, code: str) -> None:
    """A provider call that failed, by its job error code; outages also on their own figure
    (what the ProviderUnavailable alarm watches, whatever the provider)."""
    emit("ProviderErrors", 1, provider=provider, code=code)
    if code == "provider_unavailable":
        emit("ProviderUnavailable", 1, provider=provider)
