"""The EVM world: artifacts, RPC connection, readers, chain registry, gas and nonces."""
