"""ragtune: finetune."""
