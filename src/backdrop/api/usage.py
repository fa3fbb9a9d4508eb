"""GET /v1/usage: what the calling API key's work made and cost, by day and provider
(usage.py). A key sees only its own."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop import usage as reports
from backdrop.api.caller import caller
from backdrop.api.container import current
from backdrop.api.errors import ApiError
from backdrop.api.schemas import error_responses
from backdrop.domain import Refused

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.get(
    "/v1/usage",
    operation_id="getUsage",
    tags=["usage"],
    summary="Your jobs, images and their cost, by day (UTC) and provider",
    responses={200: {"description": "The usage."}, **error_responses(403, 422, 429, 500)},
)
def get_usage(
    start: Annotated[
        date | None,
        Query(
            alias="from",
            description=f"The first day (YYYY-MM-DD, UTC); default {reports.DEFAULT_DAYS} "
            "days before `to`.",
        ),
    ] = None,
    end: Annotated[
        date | None,
        Query(
            alias="to",
            description=f"The last day, included; default today. At most {reports.MAX_DAYS} "
            "days in all.",
        ),
    ] = None,
) -> reports.Usage:
    api = current()
    try:
        asked = reports.days(start, end, datetime.now(UTC).date())
    except Refused as exc:
        raise ApiError.refused(exc) from None
    return reports.usage(caller(router.current_event), asked, jobs=api.jobs, batches=api.batches)
