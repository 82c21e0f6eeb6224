# The two commands of the README: `make demo` (set up + run the main job) and `make test`
# (set up + run the tests). Both create .venv on first use; a second setup takes a second.
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export UNSTRUCTURED_DISABLE_NOTICE := 1
export RAGAS_DO_NOT_TRACK := true
export NEMO_GUARDRAILS_NO_USAGE_STATS := 1

.PHONY: setup demo test test-fast
setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh $(ARGS)

test: setup
	@bash scripts/setup_test_server.sh
	@bash scripts/setup_browser.sh
	@bash scripts/setup_postgres.sh
	@.venv/bin/python -m pytest -q $(PYTEST_ARGS)

test-fast: setup
	@.venv/bin/python -m pytest -q -m "not integration" $(PYTEST_ARGS)
