"""Text generation backends behind one protocol (see `base.py`): transformers, openai, fake."""
