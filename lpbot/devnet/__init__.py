"""The local chain: Anvil with the official Uniswap V3 and Safe contracts, pools, a market."""
