"""Costs for agents that report none: the price table shipped in prices.toml, overridable per
experiment with `--agent-opt prices=FILE` (same TOML format; its entries win, model by model).

`settle_cost` is the one rule every adapter applies: a cost the agent reported (> 0) is kept with
cost_source "agent"; otherwise a priced model gets its cost from the table ("price_table");
otherwise the cost stays 0 and the source "unknown", so a report never passes a guess as a fact.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tierbench.models import AgentOutcome, TokenStats

PRICES_OPTION = "prices"


@dataclass(frozen=True)
class Price:
    input: float  # USD per million uncached input tokens
    output: float  # USD per million output tokens (reasoning included)
    cached_input: float | None = None  # per million cache-read tokens; None: billed as input
    cache_write: float | None = None  # per million cache-write tokens; None: billed as input

    def cost(self, tokens: TokenStats) -> float:
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        return (tokens.input_tokens * self.input + tokens.output_tokens * self.output
                + tokens.cache_read_tokens * cached + tokens.cache_creation_tokens * write) / 1_000_000


def _parse(text: str, source: str) -> dict[str, Price]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc}). Fix: see src/tierbench/agents/prices.toml "
                         "for the format") from None
    models = data.get("models")
    if not isinstance(models, dict):
        raise ValueError(f"{source}: no [models.\"NAME\"] tables. Fix: see src/tierbench/agents/prices.toml "
                         "for the format")
    table: dict[str, Price] = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: models.{name} must be a table with input and output prices")
        unknown = sorted(set(entry) - {"input", "output", "cached_input", "cache_write"})
        if unknown or "input" not in entry or "output" not in entry:
            raise ValueError(f"{source}: models.{name} needs numbers input and output (USD per million tokens), "
                             f"optionally cached_input and cache_write"
                             + (f"; unknown field(s) {unknown}" if unknown else ""))
        try:
            values = {key: float(value) for key, value in entry.items()}
        except (TypeError, ValueError):
            raise ValueError(f"{source}: models.{name}: prices must be numbers") from None
        if any(value < 0 for value in values.values()):
            raise ValueError(f"{source}: models.{name}: prices cannot be negative")
        table[name] = Price(**values)
    return table


def shipped_prices() -> dict[str, Price]:
    text = resources.files("tierbench.agents").joinpath("prices.toml").read_text(encoding="utf-8")
    return _parse(text, "tierbench/agents/prices.toml")


def load_prices(override: str | Path | None = None) -> dict[str, Price]:
    """The shipped table, with `override`'s entries on top. Raises ValueError naming the file."""
    table = shipped_prices()
    if override:
        path = Path(override).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--agent-opt prices={override}: cannot read the price file ({exc.strerror})") from None
        table.update(_parse(text, str(path)))
    return table


def lookup(table: dict[str, Price], model: str | None) -> Price | None:
    if not model:
        return None
    if model in table:
        return table[model]
    bare = model.rsplit("/", 1)[-1]
    return table.get(bare)


def validate_prices_option(options: dict[str, str]) -> None:
    if options.get(PRICES_OPTION):
        load_prices(options[PRICES_OPTION])


def settle_cost(outcome: AgentOutcome, model: str | None, options: dict[str, str],
                agent_cost: float | None = None) -> AgentOutcome:
    """Set cost_usd and cost_source on `outcome` by the rule in the module docstring."""
    if agent_cost is not None and agent_cost > 0:
        outcome.cost_usd, outcome.cost_source = float(agent_cost), "agent"
        return outcome
    try:
        price = lookup(load_prices(options.get(PRICES_OPTION)), model)
    except ValueError:  # validated when the experiment started; a file broken or removed since
        price = lookup(shipped_prices(), model)
    if price is None:
        outcome.cost_usd, outcome.cost_source = 0.0, "unknown"
    else:
        outcome.cost_usd, outcome.cost_source = round(price.cost(outcome.token_stats), 8), "price_table"
    return outcome
