"""ragtune: eval."""
