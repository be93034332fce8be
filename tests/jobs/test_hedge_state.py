"""A hedge whose state is not on this host while the store has its orders (a standby on
another machine without the shared ``data_dir/hedge``) is refused, not started afresh."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from lpbot.errors import NeedsAttention
from lpbot.jobs.runtime import _check_hedge_state
from lpbot.store import migrate, repo
from lpbot.store.models import OrderSide
from lpbot.store.session import make_engine, session_factory

NPM = "31337:0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9"


def test_a_hedge_without_its_state_but_with_recorded_orders_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lpbot.db'}")
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        for label, token in (("eth-usdc", 21), ("other", 30)):
            repo.record_position(
                s,
                label=label,
                chain_id=31337,
                pool_address="0x" + "11" * 20,
                token_id=token,
                owner_address="0x" + "22" * 20,
                tick_lower=-10,
                tick_upper=10,
            )
        repo.record_hedge_order(
            s,
            client_order_id="lpbot-1",
            exchange="paper",
            symbol="ETH/USDT:USDT",
            side=OrderSide.SELL,
            amount=Decimal("1.667"),
            reason=f"{NPM}:21 step 1.0",
        )
    state = tmp_path / "hedge" / "hedge-paper-31337-x-21.json"
    position = SimpleNamespace(name="eth-usdc", sessions=sessions)
    with pytest.raises(NeedsAttention, match="1 order\\(s\\) of this position's hedge"):
        _check_hedge_state(position, state, NPM, "paper")  # type: ignore[arg-type]
    # another position's hedge with no orders yet starts afresh; so does one with its state
    _check_hedge_state(SimpleNamespace(name="other", sessions=sessions), state, NPM, "paper")  # type: ignore[arg-type]
    state.parent.mkdir()
    state.write_text("{}")
    _check_hedge_state(position, state, NPM, "paper")  # type: ignore[arg-type]
    engine.dispose()
