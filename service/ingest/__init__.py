"""Ingest of the three stable formats: people.csv, records.jsonl, ratings.csv."""
