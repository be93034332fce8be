"""Reports a person reads: dry-runs before signing, positions, performance."""
