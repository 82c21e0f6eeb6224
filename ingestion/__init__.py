"""ragtune: ingestion."""
