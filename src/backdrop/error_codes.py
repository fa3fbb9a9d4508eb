"""Every error code the service answers or records, in one list: its kind, its HTTP status,
what the workflow does with it, whether trying again may help, and what it means to users.

Plain data and the standard library only: deployed with every function and imported by
any module that names a code. docs/reference/errors.md is generated from it (`make
docs-tables`), and tests/unit/test_error_codes.py fails when the code emits a code missing
here, or when an entry here is emitted nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """Where a code is seen. A code may be seen in more than one place."""

    API = "api"  # answered by the API (its function, or API Gateway itself) with a status
    REFUSAL = "refusal"  # work refused before anything starts: a 4xx answer, or a failed job
    JOB = "job"  # recorded on a job (or a batch) once its work is under way


class Retry(Enum):
    """What the generation workflow does with a job error before the job records it."""

    NO = "no"  # recorded at once: trying again cannot help, or could pay twice
    BACKOFF = "backoff"  # WORKFLOW_RETRIES more tries, exponential backoff with full jitter
    WAITS = "waits"  # never the job's error: the job waits (the provider's reset) instead


# The tries a transient failure gets before it is the job's: each Retry of the generation
# workflow's ASL that names one of the catalogue's errors, and the tasks that retry a
# provider themselves (workflow/provider_tasks.py PROVIDER_RETRIES).
WORKFLOW_RETRIES = 3


@dataclass(frozen=True)
class ErrorCode:
    name: str
    kinds: tuple[Kind, ...]  # the first is where it is mostly seen
    meaning: str  # one line, for users
    status: int | None = None  # the HTTP status the API answers it with, if it does
    retry: Retry | None = None  # the workflow's policy, for what the generation workflow records
    may_retry: bool = False  # whether the caller sending the same work again may succeed
    # The Lambda errorTypes (our exception classes' names) and Step Functions errors that
    # the workflow records as this code (workflow/failures.py).
    error_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # An API error always has its status, a refusal may (the inbox's never reach the
        # API); only what a job records has a workflow policy.
        if (API in self.kinds and self.status is None) or (
            self.status is not None and not {API, REFUSAL} & set(self.kinds)
        ):
            raise ValueError(f"{self.name}: a status is for what the API answers")
        if self.retry is not None and JOB not in self.kinds:
            raise ValueError(f"{self.name}: a workflow policy is for job errors")


API, REFUSAL, JOB = Kind.API, Kind.REFUSAL, Kind.JOB

CATALOGUE: tuple[ErrorCode, ...] = (
    # Answered by the API, in the one error shape.
    ErrorCode("malformed_json", (API,), "the body is not JSON, or not UTF-8", status=400),
    ErrorCode(
        "malformed_body",
        (API,),
        "a multipart body that cannot be read, or has no boundary",
        status=400,
    ),
    ErrorCode(
        "bad_request",
        (API,),
        "any other refusal by API Gateway itself (the message says which; its status may be "
        "another 4xx)",
        status=400,
    ),
    ErrorCode(
        "forbidden",
        (API,),
        "no API key, or a wrong one (or a disabled one, or one not on the usage plan)",
        status=403,
    ),
    ErrorCode(
        "not_found",
        (API,),
        "no such generation or batch (or a malformed id, or one another API key made), or no "
        "such route",
        status=404,
    ),
    ErrorCode(
        "request_in_progress",
        (API,),
        "a request with the same `Idempotency-Key` is still being handled",
        status=409,
        may_retry=True,
    ),
    ErrorCode(
        "already_finished",
        (API,),
        "cancel of a generation or batch that has already finished",
        status=409,
    ),
    ErrorCode(
        "not_reviewable",
        (API,),
        "review of a generation that has not succeeded, was not held for review, or was "
        "superseded by its regeneration (the message names its status)",
        status=409,
    ),
    ErrorCode(
        "decision_changed",
        (API,),
        "another reviewer decided first: the details carry the review as it is now; read the "
        "generation again before deciding",
        status=409,
        may_retry=True,
    ),
    ErrorCode(
        "still_running",
        (API,),
        "retry of a batch that is still running: retry its failures once it has finished",
        status=409,
        may_retry=True,
    ),
    ErrorCode(
        "payload_too_large",
        (API,),
        "an inline photo over 4 MB, or a request over what the API takes: use `POST /v1/uploads`",
        status=413,
    ),
    ErrorCode(
        "unsupported_media_type",
        (API,),
        "a body that is not JSON, `multipart/form-data` or a URL-encoded form",
        status=415,
    ),
    ErrorCode(
        "idempotency_key_reused",
        (API,),
        "the same `Idempotency-Key` with a different body within 24 h",
        status=422,
    ),
    ErrorCode(
        "throttled",
        (API,),
        "over the usage plan's rate (`ApiThrottleRateLimit`, `ApiThrottleBurstLimit`) or the "
        "stage's (`ApiStageRateLimit`, `ApiStageBurstLimit`): retry with backoff",
        status=429,
        may_retry=True,
    ),
    ErrorCode(
        "quota_exceeded",
        (API,),
        "the API key's daily quota (`ApiQuotaPerDay`) is used up until the next day",
        status=429,
        may_retry=True,
    ),
    ErrorCode(
        "internal_error",
        (API, JOB),
        "a fault on our side, details only in the logs: retry, or report the request's or job's id",
        status=500,
        retry=Retry.NO,
        may_retry=True,
    ),
    ErrorCode(
        "unavailable",
        (API,),
        "API Gateway got no answer from the API's function (it failed, or took too long)",
        status=502,
        may_retry=True,
    ),
    ErrorCode(
        "start_failed",
        (API, JOB),
        "the workflow could not be started: the job (or batch) is recorded as failed, the API "
        "answers 503 with its id; an inbox image is retried by SQS instead",
        status=503,
        may_retry=True,
    ),
    # Refused before anything is paid for: a 4xx naming each field at fault, or (inbox,
    # events, a batch's items) a job that fails at once, with no provider call.
    ErrorCode(
        "invalid_request",
        (REFUSAL,),
        "a field is missing, unknown or out of range, or not exactly one image (an event's job "
        "fails with each field at fault in its message)",
        status=422,
    ),
    ErrorCode(
        "invalid_option",
        (REFUSAL,),
        "an option value that does not exist (inbox metadata `count=11`, `format=gif`, "
        "`provider=dalle`; a batch's or a manifest row's options)",
        status=422,
    ),
    ErrorCode(
        "unsupported_option",
        (REFUSAL,),
        "an option the chosen provider cannot honour (a seed with Picsart, a negative prompt "
        "with a Photoroom model other than 2)",
        status=422,
    ),
    ErrorCode(
        "invalid_image",
        (REFUSAL,),
        "not a JPEG, PNG or WEBP image the provider takes (judged from its bytes), or an empty "
        "file",
        status=422,
    ),
    ErrorCode(
        "image_quota_exceeded",
        (REFUSAL,),
        "the day's image allowance is used: an API key's (`ImagesPerKeyPerDay`, answered 429 "
        "with the limit, the count used and when it resets) or the stack's for inbox and "
        "events (`StackImagesPerDay`, a failed job); a batch's items over it end not started",
        status=429,
        may_retry=True,
    ),
    ErrorCode(
        "budget_reached",
        (REFUSAL,),
        "the batch's budget (`max_images`, `max_cost_usd`) was reached before this item "
        "started: it ends not started; a retry of the batch with a higher budget runs it",
        may_retry=True,
    ),
    ErrorCode(
        "image_too_large",
        (REFUSAL,),
        "over the provider's size limit, or so many pixels that decoding it would be a "
        "decompression bomb (Pillow's limit, about 179 million)",
        status=422,
    ),
    ErrorCode(
        "invalid_key",
        (REFUSAL,),
        "an inbox or catalogue image's key over 1009 bytes: its results' keys would pass S3's "
        "1024-byte limit",
    ),
    ErrorCode(
        "invalid_manifest",
        (REFUSAL,),
        "a batch's manifest that cannot be read (not UTF-8, CSV or JSON Lines, no rows, too "
        "many) or has rows at fault, one detail each (`line 4: count`)",
        status=422,
    ),
    ErrorCode(
        "nothing_to_retry",
        (REFUSAL,),
        "retry of a batch with no failed or unstarted items, or one that never started",
        status=409,
    ),
    # Recorded on a job once its work is under way (and, last, on batches and their items).
    ErrorCode(
        "queue_timeout",
        (JOB,),
        "the job's turn at the provider's rate limit would have come after "
        "`QueueDeadlineSeconds`, or its account stayed out of credits that long: never sent, "
        "never paid",
        retry=Retry.NO,
        may_retry=True,
        error_types=("QueueTimeout",),
    ),
    ErrorCode(
        "provider_throttled",
        (JOB,),
        "the provider answered 429: never a job's error, the job waits for the provider's reset "
        "(the `ProviderThrottled` metric counts them)",
        retry=Retry.WAITS,
        may_retry=True,
        error_types=("ProviderThrottled",),
    ),
    ErrorCode(
        "provider_unavailable",
        (JOB,),
        "the provider answered 5xx or 408, timed out, or could not be reached, before it took "
        "the job; or a result's download failed the same way",
        retry=Retry.BACKOFF,
        may_retry=True,
        error_types=("ProviderUnavailable",),
    ),
    ErrorCode(
        "provider_rejected",
        (JOB,),
        "the provider refused the input (400/404/405/413/415/422/431), e.g. not an image; the "
        "message has the provider's detail",
        retry=Retry.NO,
        error_types=("ProviderRejected",),
    ),
    ErrorCode(
        "provider_outcome_unknown",
        (JOB,),
        "the answer to a paid call was lost after it was sent: not retried, so it is not paid "
        "twice (a new job may be)",
        retry=Retry.NO,
        may_retry=True,
        error_types=("ProviderOutcomeUnknown",),
    ),
    ErrorCode(
        "provider_auth",
        (JOB,),
        "the provider answered 401/403: the API key in the stack's secret is wrong",
        retry=Retry.NO,
        error_types=("ProviderAuthError",),
    ),
    ErrorCode(
        "provider_quota",
        (JOB,),
        "the provider answered 402 where no wait is possible (a poll): the account is out of "
        "credits. A 402 to new work is a wait, never this error (the `ProviderOutOfCredits` "
        "alarm)",
        retry=Retry.NO,
        error_types=("ProviderQuotaExceeded",),
    ),
    ErrorCode(
        "provider_failed",
        (JOB,),
        "the provider accepted the job, then reported it failed (the message has its reason)",
        retry=Retry.NO,
        may_retry=True,
        error_types=("ProviderJobFailed",),
    ),
    ErrorCode(
        "provider_timeout",
        (JOB,),
        "the provider was still processing after `PollMaxAttempts` polls",
        retry=Retry.NO,
        may_retry=True,
        error_types=("ProviderTimeout",),
    ),
    ErrorCode(
        "provider_protocol",
        (JOB,),
        "an answer we cannot read (unknown status, no images), more result URLs than images, "
        "or a result that is not an image",
        retry=Retry.NO,
        error_types=("ProviderProtocolError",),
    ),
    ErrorCode(
        "result_unavailable",
        (JOB,),
        "a result URL had expired or vanished before the result was copied",
        retry=Retry.NO,
        may_retry=True,
        error_types=("ResultUnavailable",),
    ),
    ErrorCode(
        "result_blocked",
        (JOB,),
        "a result download broke a fetch guard: not https, a non-public address, more than 3 "
        "redirects, or over `ResultMaxBytes`",
        retry=Retry.NO,
        error_types=("ResultBlocked",),
    ),
    ErrorCode(
        "timeout",
        (JOB,),
        "a workflow step ran past its time limit, after its retries (a function that timed out "
        "while it may have sent paid work is not retried)",
        retry=Retry.BACKOFF,
        may_retry=True,
        error_types=("States.Timeout", "Sandbox.Timedout"),
    ),
    ErrorCode(
        "canceled",
        (JOB,),
        "not a failure: the job's caller canceled it (`status` is `canceled`); the message says "
        "whether the provider may still charge for it",
    ),
    ErrorCode(
        "workflow_failed",
        (JOB,),
        "a batch's job whose workflow ended (failed, timed out, aborted) without recording why",
        may_retry=True,
    ),
    ErrorCode(
        "too_many_attempts",
        (JOB,),
        "a batch item (its report's row) whose image has failed in too many jobs already: no "
        "batch tries it again",
    ),
    ErrorCode(
        "batch_failed",
        (JOB,),
        "a batch's own error: its run over the items failed as a whole (the message has the "
        "workflow's error)",
        may_retry=True,
    ),
)

BY_NAME: dict[str, ErrorCode] = {code.name: code for code in CATALOGUE}
_BY_ERROR_TYPE = {error: code for code in CATALOGUE for error in code.error_types}
if len(BY_NAME) < len(CATALOGUE) or len(_BY_ERROR_TYPE) < sum(
    len(code.error_types) for code in CATALOGUE
):
    raise ValueError("a code, or an errorType, is listed twice")


def get(name: str) -> ErrorCode:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is no error code: list it in backdrop/error_codes.py") from None


def for_error_type(error_type: str) -> ErrorCode:
    """The code the workflow records for a Lambda errorType or a Step Functions error."""
    try:
        return _BY_ERROR_TYPE[error_type]
    except KeyError:
        raise KeyError(
            f"no error code is recorded for {error_type!r}: list it in backdrop/error_codes.py"
        ) from None
