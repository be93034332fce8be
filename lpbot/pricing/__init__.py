"""The price source port: marks of a token in USD, ETH and BTC at a block, each with its source."""

from lpbot.pricing.base import Mark, Marks, NoPriceRoute, PriceAlert, PriceSource, PricingConfig

__all__ = ["Mark", "Marks", "NoPriceRoute", "PriceAlert", "PriceSource", "PricingConfig"]
