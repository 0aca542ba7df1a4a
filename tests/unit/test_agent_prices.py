"""The shipped price table, the user's override file, and the one cost rule every adapter applies."""

from __future__ import annotations

import pytest

from tierbench.agents.prices import load_prices, lookup, settle_cost, shipped_prices, validate_prices_option
from tierbench.models import AgentOutcome, TokenStats

TOKENS = TokenStats(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=500_000, reasoning_tokens=40_000)


def test_shipped_table_prices_common_models_per_million_tokens():
    table = shipped_prices()
    price = lookup(table, "openai/gpt-5-mini")  # a provider prefix is dropped
    assert price is not None and price.input == 0.25 and price.output == 2.0
    # reasoning tokens are inside output_tokens and are not billed twice
    assert price.cost(TOKENS) == pytest.approx(0.25 + 0.2 + 500_000 * 0.025 / 1e6)
    assert lookup(table, "no-such-model") is None


def test_settle_cost_prefers_the_agent_then_the_table_then_unknown():
    reported = settle_cost(AgentOutcome(token_stats=TOKENS), "gpt-5-mini", {}, agent_cost=0.42)
    assert (reported.cost_usd, reported.cost_source) == (0.42, "agent")
    priced = settle_cost(AgentOutcome(token_stats=TOKENS), "gpt-5-mini", {}, agent_cost=0.0)
    assert priced.cost_source == "price_table" and priced.cost_usd == pytest.approx(0.4625)
    unknown = settle_cost(AgentOutcome(token_stats=TOKENS), "house-model-7", {})
    assert (unknown.cost_usd, unknown.cost_source) == (0.0, "unknown")


def test_an_override_file_wins_and_adds_models(tmp_path):
    override = tmp_path / "prices.toml"
    override.write_text('[models."gpt-5-mini"]\ninput = 1.0\noutput = 1.0\n\n[models."house-model-7"]\n'
                        'input = 2.0\noutput = 4.0\n')
    table = load_prices(override)
    assert table["gpt-5-mini"].input == 1.0 and table["gpt-5"].input == 1.25
    outcome = settle_cost(AgentOutcome(token_stats=TokenStats(input_tokens=1_000_000, output_tokens=1_000_000)),
                          "house-model-7", {"prices": str(override)})
    assert (outcome.cost_usd, outcome.cost_source) == (6.0, "price_table")


@pytest.mark.parametrize("text, problem", [
    ("not toml [", "not valid TOML"),
    ("[other]\nx = 1\n", "no [models"),
    ('[models."m"]\ninput = 1\n', "needs numbers input and output"),
    ('[models."m"]\ninput = 1\noutput = "cheap"\n', "prices must be numbers"),
    ('[models."m"]\ninput = 1\noutput = 2\nsurcharge = 3\n', "unknown field(s) ['surcharge']"),
])
def test_a_bad_override_file_is_named_with_the_fix(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        validate_prices_option({"prices": str(path)})
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_missing_override_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="prices=.*cannot read the price file"):
        validate_prices_option({"prices": str(tmp_path / "nope.toml")})
