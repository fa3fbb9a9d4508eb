"""Batches: whole catalogues at once, on Step Functions Distributed Map (batch.asl.json).
Each item becomes a job through the one plan (items.py); the batch keeps its own record,
one record per item, and live counts (store.py); its end writes a report (report.py)."""
