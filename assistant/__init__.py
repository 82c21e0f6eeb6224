"""ragtune: assistant."""
