"""The pinned evaluation and guardrails libraries import offline (a pin that breaks them fails here)."""


def test_ragas_imports_with_the_pinned_langchain_community():
    # ragas 0.4.3 imports langchain_community.chat_models.vertexai at load; 0.4.2 removed it.
    import ragas
    from ragas.metrics import NonLLMStringSimilarity  # noqa: F401

    assert ragas.__version__.startswith("0.4")


def test_nemoguardrails_imports():
    import nemoguardrails

    assert nemoguardrails.LLMRails
