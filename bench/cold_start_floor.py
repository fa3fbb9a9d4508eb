"""What a function pays before any code of ours (bench/cold_start.py's floors): boto3,
pydantic with its first model (which loads its schema machinery) and the Powertools logger;
with COLD_START_FLOOR=sqs also Powertools' batch processing (the SQS functions: imported
before pydantic, as handlers/sqs.py is), with COLD_START_FLOOR=api also Powertools'
validated REST resolver (the API function)."""

import os

import aws_lambda_powertools.logging  # noqa: F401
import boto3  # noqa: F401

_KIND = os.environ.get("COLD_START_FLOOR", "")
if _KIND == "sqs":
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    BatchProcessor(event_type=EventType.SQS)

from pydantic import BaseModel  # noqa: E402


class First(BaseModel):
    value: int


if _KIND == "api":
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.params import Body

    app = APIGatewayRestResolver(enable_validation=True)

    @app.post("/")
    def route(body: Body = None) -> dict[str, int]:  # type: ignore[assignment]
        return {}
