"""Signed webhooks (Standard Webhooks v1): a job's outcome POSTed to its `webhook_url` and
the stack's `WebhookUrls`, from an SQS queue fed by an EventBridge rule on the stack's bus,
retried over about three days, then dead-lettered."""
