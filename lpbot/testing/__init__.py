"""Hand-written fakes and factories for tests (no mocks)."""
