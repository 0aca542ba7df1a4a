# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Claude Code CLI version the e2e tests are pinned to (installed from npm into .tools/).
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE_CODE_DIR := .tools/claude-code
CLAUDE_BIN := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude
DEMO_RESULTS ?= results/demo

.PHONY: install dev claude-code demo test typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,ray]'

# Installs the pinned CLI when npm exists; without npm the e2e tests skip with a visible reason.
claude-code:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -x $(CLAUDE_BIN) ] || ! $(CLAUDE_BIN) --version 2>/dev/null | grep -q '$(CLAUDE_CODE_VERSION)'; then \
	    echo "installing @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR)"; \
	    mkdir -p $(CLAUDE_CODE_DIR) && \
	    npm install --silent --no-audit --no-fund --prefix $(CLAUDE_CODE_DIR) @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION); \
	  fi; \
	else echo "npm not found: the Claude Code e2e tests will be skipped"; fi

demo: install
	$(BIN)/tierbench batch examples/tests --results-dir $(DEMO_RESULTS) --agent demo --threads 2

test: dev claude-code typecheck
	TIERBENCH_CLAUDE_BIN="$(abspath $(CLAUDE_BIN))" $(BIN)/python -m pytest -q -p no:cacheprovider

# mypy over src/ (settings in pyproject.toml); part of `make test`.
typecheck: dev
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .tools results
