# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Claude Code CLI version the e2e tests are pinned to (installed from npm into .tools/).
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE_CODE_DIR := .tools/claude-code
CLAUDE_BIN := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude
DEMO_RESULTS ?= results/demo
# The other agents' pinned versions (installed into .tools/<name>; Python agents get their own venv
# there, never the project's). Keep in step with PINNED_VERSIONS in src/tierbench/agents/features.py.
CODEX_VERSION := 0.169.0
GEMINI_CLI_VERSION := 0.61.0
OPENCODE_VERSION := 1.18.33
AIDER_VERSION := 0.86.2
MINI_SWE_AGENT_VERSION := 2.4.6
MCP_VERSION := 2.3.0

.PHONY: install dev claude-code agents browser vendor-htmx demo test typecheck clean
# htmx is vendored into the viewer (the browser may have no network); `make vendor-htmx` refreshes it.
HTMX_VERSION := 2.0.11

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[view]'

dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,view,ray]'

# Installs the pinned CLI when npm exists; without npm the e2e tests skip with a visible reason.
claude-code:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -x $(CLAUDE_BIN) ] || ! $(CLAUDE_BIN) --version 2>/dev/null | grep -q '$(CLAUDE_CODE_VERSION)'; then \
	    echo "installing @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) into $(CLAUDE_CODE_DIR)"; \
	    mkdir -p $(CLAUDE_CODE_DIR) && \
	    npm install --silent --no-audit --no-fund --prefix $(CLAUDE_CODE_DIR) @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION); \
	  fi; \
	else echo "npm not found: the Claude Code e2e tests will be skipped"; fi

# Every other pinned agent, each skipped when its pinned version is already there. Without npm (or
# python3 -m venv) the matching e2e tests skip with a visible reason.
define npm_agent
	@if command -v npm >/dev/null 2>&1; then \
	  if [ "$$(cat .tools/$(1)/.pinned 2>/dev/null)" != "$(2)@$(3)" ]; then \
	    echo "installing $(2)@$(3) into .tools/$(1)"; rm -rf .tools/$(1) && mkdir -p .tools/$(1) && \
	    npm install --silent --no-audit --no-fund --prefix .tools/$(1) $(2)@$(3) && \
	    echo "$(2)@$(3)" > .tools/$(1)/.pinned; \
	  fi; \
	else echo "npm not found: the $(1) e2e tests will be skipped"; fi
endef
define venv_agent
	@if [ "$$(cat .tools/$(1)/.pinned 2>/dev/null)" != "$(2)" ]; then \
	  echo "installing $(2) into .tools/$(1)"; rm -rf .tools/$(1) && \
	  $(PYTHON) -m venv .tools/$(1) && .tools/$(1)/bin/python -m pip install -q --disable-pip-version-check $(2) && \
	  echo "$(2)" > .tools/$(1)/.pinned; \
	fi
endef

agents:
	$(call npm_agent,codex,@openai/codex,$(CODEX_VERSION))
	$(call npm_agent,gemini,@google/gemini-cli,$(GEMINI_CLI_VERSION))
	$(call npm_agent,opencode,opencode-ai,$(OPENCODE_VERSION))
	$(call venv_agent,mini-swe-agent,mini-swe-agent==$(MINI_SWE_AGENT_VERSION) mcp==$(MCP_VERSION))
	$(call venv_agent,aider,aider-chat==$(AIDER_VERSION))

# The viewer's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work offline). Without chromium and without root apt-get they skip, saying why.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (Debian) for the viewer's browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "chromium could not be installed: the viewer's browser tests will be skipped"; \
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

test: dev claude-code agents browser typecheck
	TIERBENCH_CLAUDE_BIN="$(abspath $(CLAUDE_BIN))" $(BIN)/python -m pytest -q -p no:cacheprovider

# mypy over src/ (settings in pyproject.toml); part of `make test`.
typecheck: dev
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .tools results
