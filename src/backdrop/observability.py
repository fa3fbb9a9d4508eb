"""The logger, created once per container and shared by every module. The service name
comes from POWERTOOLS_SERVICE_NAME.

Traces come from Lambda's and Step Functions' own tracing (`Tracing: Active`): every
invocation and every state is a segment. The X-Ray SDK, which would sub-segment each AWS
call, is not loaded: importing it cost more than any single workflow task's own work.
"""

from aws_lambda_powertools.logging import Logger

logger = Logger()
