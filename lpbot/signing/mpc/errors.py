"""Errors of the MPC signer, as branches of lpbot's errors (named after what happens next)."""

from __future__ import annotations

from lpbot.errors import NeedsAttention, Refused


class PartyUnavailable(NeedsAttention):
    """A party cannot be reached or cannot open its share: a person must bring it back."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"MPC party {index}: {message}")
        self.index = index


class MpcAborted(NeedsAttention):
    """A protocol run stopped: a message failed authentication or a check (a cheating or broken
    party, or a relay that tampered). Nothing was signed; a person should look before retrying."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"MPC run aborted by party {index}: {message}")
        self.index = index


class CosignerRefused(Refused):
    """The co-signer's policy refused to take part; no protocol message was sent."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"co-signer (party {index}) refused: {reason}")
        self.index = index
        self.reason = reason
