"""Which transactions go to the private endpoint: on Ethereum the swap-bearing ones by default,
never silently to the public mempool when they must go privately."""

from __future__ import annotations

import pytest

from lpbot.chain.submit import submission_route
from lpbot.errors import Refused

PROTECT = "$PROTECT_URL"


def test_on_ethereum_a_swap_goes_privately_and_anything_else_publicly() -> None:
    swap = submission_route(1, "auto", swap=True, endpoint=PROTECT)
    assert swap.private and swap.endpoint == PROTECT and not swap.public_fallback
    assert "no public fallback" in swap.text()
    plain = submission_route(1, "auto", swap=False, endpoint=PROTECT)
    assert not plain.private and plain.to_json()["route"] == "public"


def test_elsewhere_auto_follows_the_configured_endpoint() -> None:
    assert not submission_route(42161, "auto", swap=True, endpoint=None).private
    assert submission_route(42161, "auto", swap=False, endpoint="$SEQUENCER").private
    assert not submission_route(31337, "auto", swap=True, endpoint=None).private


@pytest.mark.parametrize("swap", [True, False])
def test_never_sends_publicly_and_always_privately(swap: bool) -> None:
    assert not submission_route(1, "never", swap=swap, endpoint=PROTECT).private
    assert submission_route(42161, "always", swap=swap, endpoint="$SEQUENCER").private


def test_a_private_route_without_an_endpoint_is_refused_never_public() -> None:
    with pytest.raises(Refused, match="must be sent privately"):
        submission_route(1, "auto", swap=True, endpoint=None)
    with pytest.raises(Refused, match="no private endpoint"):
        submission_route(10, "always", swap=False, endpoint=None)
    # a configured fallback is carried, and said
    route = submission_route(1, "auto", swap=True, endpoint=PROTECT, public_fallback=True)
    assert route.public_fallback and "public_fallback = true" in route.text()
