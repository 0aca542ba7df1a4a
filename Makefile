# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Claude Code CLI version the e2e tests are pinned to (installed from npm into .tools/).
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE_CODE_DIR := .tools/claude-code
CLAUDE_BIN := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude
DEMO_RESULTS ?= results/demo

.PHONY: install dev claude-code browser vendor-htmx demo test typecheck clean
# htmx is vendored into the viewer (the browser may have no network); `make vendor-htmx` refreshes it.
HTMX_VERSION := 2.0.11

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[view]'

dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,view]'

# Installs the pinned CLI when npm exists; without npm the e2e tests skip with a visible reason.
claude-code:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -x $(CLAUDE_BIN) ] || ! $(CLAUDE_BIN) --version 2>/dev/null | grep -q '$(CLAUDE_CODE_VERSION)'; then \
	    echo "installing @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR)"; \
	    mkdir -p $(CLAUDE_CODE_DIR) && \
	    npm install --silent --no-audit --no-fund --prefix $(CLAUDE_CODE_DIR) @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION); \
	  fi; \
	else echo "npm not found: the Claude Code e2e tests will be skipped"; fi

# The viewer's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work offline). Without chromium and without root apt-get they skip, saying why.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (Debian) for the viewer's browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "no /usr/bin/chromium and no root apt-get: the viewer's browser tests will be skipped"; fi; \
	fi

vendor-htmx:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null && \
	  tar xzf htmx.org-$(HTMX_VERSION).tgz && \
	  cp package/dist/htmx.min.js $(CURDIR)/src/tierbench/view/static/htmx.min.js && \
	  cp package/LICENSE $(CURDIR)/src/tierbench/view/static/htmx.LICENSE && rm -rf $$tmp && \
	  echo "vendored htmx $(HTMX_VERSION)"

demo: install
	$(BIN)/tierbench batch examples/tests --results-dir $(DEMO_RESULTS) --agent demo --threads 2

test: dev claude-code browser typecheck
	TIERBENCH_CLAUDE_BIN="$(abspath $(CLAUDE_BIN))" $(BIN)/python -m pytest -q -p no:cacheprovider

# mypy over src/ (settings in pyproject.toml); part of `make test`.
typecheck: dev
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .tools results
