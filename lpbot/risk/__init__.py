"""Risk controls: the market regime and pool health."""
