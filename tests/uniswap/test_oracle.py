"""Oracle against Uniswap/v3-core test/Oracle.spec.ts (v1.0.0).

``OracleHarness`` mirrors contracts/test/OracleTest.sol: ``update`` advances the clock, writes an
observation with the *previous* tick and liquidity, then stores the new ones.
"""

from __future__ import annotations

import pytest

from lpbot.uniswap import oracle
from lpbot.uniswap.errors import UniswapRevert
from lpbot.uniswap.oracle import Observation
from tests.uniswap.uniswap_testlib import MAX_UINT128


class OracleHarness:
    def __init__(self) -> None:
        self.observations: dict[int, Observation] = {}
        self.time = 0
        self.tick = 0
        self.liquidity = 0
        self.index = 0
        self.cardinality = 0
        self.cardinality_next = 0

    def initialize(self, *, time: int, tick: int, liquidity: int) -> None:
        assert self.cardinality == 0
        self.time, self.tick, self.liquidity = time, tick, liquidity
        self.cardinality, self.cardinality_next = oracle.initialize(self.observations, time)

    def advance_time(self, by: int) -> None:
        self.time = (self.time + by) % 2**32  # uint32, unchecked in Solidity 0.7

    def update(self, *, advance_time_by: int, tick: int, liquidity: int) -> None:
        self.advance_time(advance_time_by)
        self.index, self.cardinality = oracle.write(
            self.observations,
            self.index,
            self.time,
            self.tick,
            self.liquidity,
            self.cardinality,
            self.cardinality_next,
        )
        self.tick, self.liquidity = tick, liquidity

    def grow(self, cardinality_next: int) -> None:
        self.cardinality_next = oracle.grow(
            self.observations, self.cardinality_next, cardinality_next
        )

    def observe(self, seconds_agos: list[int]) -> tuple[list[int], list[int]]:
        return oracle.observe(
            self.observations,
            self.time,
            seconds_agos,
            self.tick,
            self.index,
            self.liquidity,
            self.cardinality,
        )

    def observe_single(self, seconds_ago: int) -> tuple[int, int]:
        tick_cumulatives, spls = self.observe([seconds_ago])
        return tick_cumulatives[0], spls[0]

    def observation(self, i: int) -> Observation:
        return self.observations.get(i, Observation())


def initialized() -> OracleHarness:
    o = OracleHarness()
    o.initialize(time=0, tick=0, liquidity=0)
    return o


# ----------------------------------------------------------------------------------- #initialize


def test_initialize():
    o = OracleHarness()
    o.initialize(liquidity=1, tick=1, time=1)
    assert (o.index, o.cardinality, o.cardinality_next) == (0, 1, 1)
    # 'sets first slot timestamp only'
    assert o.observation(0) == Observation(1, 0, 0, True)


# ----------------------------------------------------------------------------------------- #grow


def test_grow():
    o = initialized()
    o.grow(5)  # 'increases the cardinality next for the first call'
    assert (o.index, o.cardinality, o.cardinality_next) == (0, 1, 5)
    assert o.observation(0) == Observation(0, 0, 0, True)  # 'does not touch the first slot'
    for i in range(1, 5):  # 'adds data to all the slots'
        assert o.observation(i) == Observation(1, 0, 0, False)
    o.grow(3)  # 'is no op if oracle is already gte that size'
    assert (o.index, o.cardinality, o.cardinality_next) == (0, 1, 5)


def test_grow_after_wrap():
    o = initialized()
    o.grow(2)
    o.update(advance_time_by=2, liquidity=1, tick=1)  # index is now 1
    o.update(advance_time_by=2, liquidity=1, tick=1)  # index is now 0 again
    assert o.index == 0
    o.grow(3)
    assert (o.index, o.cardinality, o.cardinality_next) == (0, 2, 3)


def test_grow_requires_initialization():
    with pytest.raises(UniswapRevert) as exc:
        oracle.grow({}, 0, 5)
    assert exc.value.reason == "I"


# ---------------------------------------------------------------------------------------- #write


def test_single_element_array_gets_overwritten():
    o = initialized()
    o.update(advance_time_by=1, tick=2, liquidity=5)
    assert o.index == 0
    assert o.observation(0) == Observation(1, 0, 340282366920938463463374607431768211456, True)
    o.update(advance_time_by=5, tick=-1, liquidity=8)
    assert o.index == 0
    assert o.observation(0) == Observation(6, 10, 680564733841876926926749214863536422912, True)
    o.update(advance_time_by=3, tick=2, liquidity=3)
    assert o.index == 0
    assert o.observation(0) == Observation(9, 7, 808170621437228850725514692650449502208, True)


def test_does_nothing_if_time_has_not_changed():
    o = initialized()
    o.grow(2)
    o.update(advance_time_by=1, tick=3, liquidity=2)
    assert o.index == 1
    o.update(advance_time_by=0, tick=-5, liquidity=9)
    assert o.index == 1


def test_writes_an_index_if_time_has_changed():
    o = initialized()
    o.grow(3)
    o.update(advance_time_by=6, tick=3, liquidity=2)
    assert o.index == 1
    o.update(advance_time_by=4, tick=-5, liquidity=9)
    assert o.index == 2
    assert o.observation(1) == Observation(6, 0, 2041694201525630780780247644590609268736, True)


def test_grows_cardinality_when_writing_past():
    o = initialized()
    o.grow(2)
    o.grow(4)
    assert o.cardinality == 1
    o.update(advance_time_by=3, tick=5, liquidity=6)
    assert o.cardinality == 4
    o.update(advance_time_by=4, tick=6, liquidity=4)
    assert (o.cardinality, o.index) == (4, 2)
    assert o.observation(2) == Observation(7, 20, 1247702012043441032699040227249816775338, True)


def test_wraps_around():
    o = initialized()
    o.grow(3)
    o.update(advance_time_by=3, tick=1, liquidity=2)
    o.update(advance_time_by=4, tick=2, liquidity=3)
    o.update(advance_time_by=5, tick=3, liquidity=4)
    assert o.index == 0
    assert o.observation(0) == Observation(12, 14, 2268549112806256423089164049545121409706, True)


def test_accumulates_liquidity():
    o = initialized()
    o.grow(4)
    o.update(advance_time_by=3, tick=3, liquidity=2)
    o.update(advance_time_by=4, tick=-7, liquidity=6)
    o.update(advance_time_by=5, tick=-2, liquidity=4)
    assert o.index == 3
    assert o.observation(1) == Observation(3, 0, 1020847100762815390390123822295304634368, True)
    assert o.observation(2) == Observation(7, 12, 1701411834604692317316873037158841057280, True)
    assert o.observation(3) == Observation(12, -23, 1984980473705474370203018543351981233493, True)
    assert o.observation(4) == Observation(0, 0, 0, False)


# ------------------------------------------------------------------------------------- #observe


def test_fails_before_initialize():
    with pytest.raises(UniswapRevert) as exc:
        OracleHarness().observe_single(0)
    assert exc.value.reason == "I"


def test_fails_if_an_older_observation_does_not_exist():
    o = OracleHarness()
    o.initialize(liquidity=4, tick=2, time=5)
    with pytest.raises(UniswapRevert) as exc:
        o.observe_single(1)
    assert exc.value.reason == "OLD"


def test_does_not_fail_across_overflow_boundary():
    o = OracleHarness()
    o.initialize(liquidity=4, tick=2, time=2**32 - 1)
    o.advance_time(2)
    assert o.observe_single(1) == (2, 85070591730234615865843651857942052864)


def test_interpolates_correctly_at_max_liquidity():
    o = OracleHarness()
    o.initialize(liquidity=MAX_UINT128, tick=0, time=0)
    o.grow(2)
    o.update(advance_time_by=13, tick=0, liquidity=0)
    assert [o.observe_single(s)[1] for s in (0, 6, 12, 13)] == [13, 7, 1, 0]


@pytest.mark.parametrize("start_liquidity", [0, 1])
def test_interpolates_correctly_at_min_liquidity(start_liquidity):
    # 'interpolates correctly at min liquidity' / 'the same as 0 liquidity for 1 liquidity'
    o = OracleHarness()
    o.initialize(liquidity=start_liquidity, tick=0, time=0)
    o.grow(2)
    o.update(advance_time_by=13, tick=0, liquidity=MAX_UINT128)
    assert [o.observe_single(s)[1] for s in (0, 6, 12, 13)] == [
        13 << 128,
        7 << 128,
        1 << 128,
        0,
    ]


def test_interpolates_correctly_across_uint32_seconds_boundaries():
    o = OracleHarness()
    o.initialize(liquidity=0, tick=0, time=0)
    o.grow(2)
    o.update(advance_time_by=2**32 - 6, tick=0, liquidity=0)
    assert o.observe_single(0)[1] == (2**32 - 6) << 128
    o.update(advance_time_by=13, tick=0, liquidity=0)
    assert o.observe_single(0)[1] == 7 << 128
    # interpolation checks
    assert o.observe_single(3)[1] == 4 << 128
    assert o.observe_single(8)[1] == (2**32 - 1) << 128


def test_single_observation_cases():
    o = OracleHarness()
    o.initialize(liquidity=4, tick=2, time=5)
    assert o.observe_single(0) == (0, 0)  # 'single observation at current time'
    o.advance_time(3)
    with pytest.raises(UniswapRevert) as exc:  # 'in past but not earlier than secondsAgo'
        o.observe_single(4)
    assert exc.value.reason == "OLD"
    assert o.observe_single(3) == (0, 0)  # 'in past at exactly seconds ago'
    # 'counterfactual in past' / 'counterfactual now'
    assert o.observe_single(1) == (4, 170141183460469231731687303715884105728)
    assert o.observe_single(0) == (6, 255211775190703847597530955573826158592)


def two_observations() -> OracleHarness:
    o = OracleHarness()
    o.initialize(liquidity=5, tick=-5, time=5)
    o.grow(2)
    o.update(advance_time_by=4, tick=1, liquidity=2)
    return o


def test_two_observations_chronological():
    o = two_observations()
    assert o.observe_single(0) == (-20, 272225893536750770770699685945414569164)
    o.advance_time(7)
    assert o.observe_single(0) == (-13, 1463214177760035392892510811956603309260)
    assert o.observe_single(11) == (0, 0)  # exactly on first observation
    assert o.observe_single(9) == (-10, 136112946768375385385349842972707284582)  # between


def test_two_observations_reverse_order():
    o = two_observations()
    o.update(advance_time_by=3, tick=-5, liquidity=4)
    assert o.observe_single(0) == (-17, 782649443918158465965761597093066886348)
    o.advance_time(7)
    assert o.observe_single(0) == (-52, 1378143586029800777026667160098661256396)
    assert o.observe_single(10) == (-20, 272225893536750770770699685945414569164)
    assert o.observe_single(9) == (-19, 442367076997220002502386989661298674892)


def test_can_fetch_multiple_observations():
    o = OracleHarness()
    o.initialize(time=5, tick=2, liquidity=2**15)
    o.grow(4)
    o.update(advance_time_by=13, tick=6, liquidity=2**12)
    o.advance_time(5)
    tick_cumulatives, spls = o.observe([0, 3, 8, 13, 15, 18])
    assert tick_cumulatives == [56, 38, 20, 10, 6, 0]
    assert spls == [
        550383467004691728624232610897330176,
        301153217795020002454768787094765568,
        103845937170696552570609926584401920,
        51922968585348276285304963292200960,
        31153781151208965771182977975320576,
        0,
    ]


@pytest.mark.parametrize("starting_time", [5, 2**32 - 5])
def test_initialized_with_5_observations(starting_time):
    o = OracleHarness()
    o.initialize(liquidity=5, tick=-5, time=starting_time)
    o.grow(5)
    o.update(advance_time_by=3, tick=1, liquidity=2)
    o.update(advance_time_by=2, tick=-6, liquidity=4)
    o.update(advance_time_by=4, tick=-2, liquidity=4)
    o.update(advance_time_by=1, tick=-2, liquidity=9)
    o.update(advance_time_by=3, tick=4, liquidity=2)
    o.update(advance_time_by=6, tick=6, liquidity=7)
    assert (o.index, o.cardinality, o.cardinality_next) == (1, 5, 5)

    latest = (-21, 2104079302127802832415199655953100107502)
    before_latest = (-33, 1593655751746395137220137744805447790318)
    oldest = (-13, 544451787073501541541399371890829138329)

    fork = _copy(o)
    assert fork.observe_single(0) == latest  # latest observation same time as latest
    assert fork.observe_single(3) == before_latest
    assert fork.observe_single(14) == oldest  # oldest observation
    with pytest.raises(UniswapRevert) as exc:  # older than oldest reverts
        fork.observe_single(15)
    assert exc.value.reason == "OLD"

    fork = _copy(o)
    fork.advance_time(5)
    assert fork.observe_single(5) == latest  # latest observation 5 seconds after latest
    assert fork.observe_single(0) == (9, 2347138135642758877746181518404363115684)
    assert fork.observe_single(8) == before_latest
    with pytest.raises(UniswapRevert) as exc:
        fork.observe_single(20)
    assert exc.value.reason == "OLD"

    fork = _copy(o)
    fork.advance_time(6)
    assert fork.observe_single(20) == oldest  # oldest observation after some time


def _copy(o: OracleHarness) -> OracleHarness:
    fork = OracleHarness()
    fork.__dict__.update(
        {k: (dict(v) if isinstance(v, dict) else v) for k, v in o.__dict__.items()}
    )
    return fork


def test_lte_compares_across_the_wrap():
    # time = 5 just after the uint32 wrap: 2**32 - 1 is "before" 3
    assert oracle.lte(5, 2**32 - 1, 3)
    assert not oracle.lte(5, 3, 2**32 - 1)
    assert oracle.lte(100, 1, 2)


def test_binary_search_skips_slots_not_yet_written():
    # cardinality grew to 5 but only slots 0 and 1 hold observations: the search must step over
    # the pre-warmed slots 2..4 (blockTimestamp 1, not initialized)
    o = OracleHarness()
    o.initialize(time=0, tick=2, liquidity=4)
    o.grow(5)
    o.update(advance_time_by=4, tick=3, liquidity=8)
    assert (o.index, o.cardinality) == (1, 5)
    assert o.observation(1) == Observation(4, 8, 1 << 128, True)
    assert o.observation(3) == Observation(1, 0, 0, False)
    o.advance_time(2)
    assert o.observe_single(5) == (2, 1 << 126)  # between slot 0 (t=0) and slot 1 (t=4)
    assert o.observe_single(6) == (0, 0)  # exactly the oldest
    assert o.observe_single(1) == (8 + 3 * 1, (1 << 128) + (1 << 128) // 8)  # counterfactual
    with pytest.raises(UniswapRevert) as exc:
        o.observe_single(7)
    assert exc.value.reason == "OLD"


def test_interpolated_tick_cumulative_truncates_toward_zero():
    # Oracle.observeSingle divides the int56 difference with Solidity's signed '/', which
    # truncates toward zero: (-10 / 3) * 1 = -3, not floor's -4
    observations = {0: Observation(0, 0, 0, True), 1: Observation(3, -10, 0, True)}
    tick_cumulative, _ = oracle.observe_single(observations, 3, 2, 0, 1, 0, 2)
    assert tick_cumulative == -3
    observations = {0: Observation(0, 0, 0, True), 1: Observation(3, 10, 0, True)}
    assert oracle.observe_single(observations, 3, 2, 0, 1, 0, 2)[0] == 3
