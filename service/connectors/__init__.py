"""Connectors: evidence from where work happens (GitHub, Jira, Slack), written through the
same validated, idempotent ingest path as records.jsonl (docs/connectors.md)."""
