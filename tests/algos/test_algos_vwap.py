"""VWAP: volume profiles from real bars, profile files, profile-shaped slicing, participation cap."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from datetime import date
from pathlib import Path

import pytest

from tests.fakes import World, calendar, make_world
from zhixing.algos.base import AlgoContext
from zhixing.algos.profile import (
    POOLED_KEY,
    SESSION_MINUTES,
    build_profile,
    load_profile,
    save_profile,
    u_shaped_profile,
)
from zhixing.algos.registry import ALGOS, create_algo, describe_algos
from zhixing.algos.vwap import VwapAlgo, VwapParams, session_minute, weighted_targets
from zhixing.engine.cli import profile_cmd
from zhixing.engine.enums import Side
from zhixing.engine.errors import InputError
from zhixing.engine.market import shanghai_ns
from zhixing.engine.orders import Order
from zhixing.engine.parents import ParentOrder, ParentStatus
from zhixing.replay.bars import load_minute_bars

ROOT = Path(__file__).resolve().parents[2]
BARS = ROOT / "replay/sample_data/bars_1m/000001.SZ_201801_1m.csv.gz"
SYMBOL_BARS = "000001.SZ"
DAY = date(2021, 12, 1)
SYMBOL = "600000.SH"
BID, ASK = 9_990, 10_000


def at(hhmm: str) -> int:
    return shanghai_ns(DAY, hhmm)


@pytest.fixture(scope="module")
def real_profile() -> list[float]:
    return build_profile(load_minute_bars(BARS))[SYMBOL_BARS]


@pytest.fixture
def profile_file(tmp_path: Path, real_profile: list[float]) -> Path:
    """The real 000001.SZ curve saved as the pooled profile, so it applies to any symbol."""
    return save_profile({POOLED_KEY: real_profile}, tmp_path / "profile.json")


def make_parent(
    quantity: int = 10_000,
    *,
    side: Side = Side.BUY,
    start: str = "09:30",
    end: str = "15:00",
    parent_id: str = "P1",
    **params: str,
) -> ParentOrder:
    return ParentOrder(
        parent_id=parent_id,
        symbol=SYMBOL,
        side=side,
        quantity=quantity,
        start_ns=at(start),
        end_ns=at(end),
        algo="vwap",
        params={"final_sweep_s": "0", **params},
    )


def context(world: World) -> AlgoContext:
    return AlgoContext(
        clock=world.clock, oms=world.oms, bus=world.bus, quotes=world.quotes, calendar=calendar()
    )


def fill_all(order: Order) -> int:
    return order.quantity


def set_volume(world: World, cum_volume: int) -> None:
    quote = world.quotes.quotes[SYMBOL]
    world.quotes.quotes[SYMBOL] = dataclasses.replace(quote, cum_volume=cum_volume)


async def vwap_world(start: str = "09:29:59", *, fill: bool = True) -> World:
    world = await make_world(at(start), fill_on_submit=fill_all if fill else None)
    world.quotes.set(SYMBOL, bid=BID, ask=ASK)
    return world


# ------------------------------------------------------------------------------------------ profiles
def test_profile_from_real_bars_sums_to_one_and_is_u_shaped(real_profile: list[float]) -> None:
    assert len(real_profile) == SESSION_MINUTES
    assert math.isclose(math.fsum(real_profile), 1.0, abs_tol=1e-9)
    assert all(v >= 0 for v in real_profile)
    midday = sum(real_profile[90:150]) / 60
    assert sum(real_profile[:5]) / 5 > 2 * midday  # the open is heavy
    assert real_profile[239] > 2 * midday  # the close (auction) is heavy
    assert sum(real_profile[225:237]) / 12 > midday  # and the run-up to it


def test_pooled_profile_and_days_are_normalised_before_averaging(real_profile: list[float]) -> None:
    bars = load_minute_bars(BARS)
    pooled = build_profile(bars, pooled=True)
    assert list(pooled) == [POOLED_KEY]
    assert pooled[POOLED_KEY] == pytest.approx(real_profile)
    doubled = bars.copy()
    first_day = doubled["trade_date"] == doubled["trade_date"].min()
    doubled.loc[first_day, "volume"] *= 1_000  # one huge day must not dominate
    assert build_profile(doubled)[SYMBOL_BARS] == pytest.approx(real_profile)


def test_u_shape_default() -> None:
    curve = u_shaped_profile()
    assert len(curve) == SESSION_MINUTES
    assert math.isclose(math.fsum(curve), 1.0, abs_tol=1e-9)
    assert curve[0] > curve[120]
    assert curve[239] > curve[120]


def test_profile_round_trips(tmp_path: Path, real_profile: list[float]) -> None:
    path = save_profile({SYMBOL_BARS: real_profile}, tmp_path / "sub" / "p.json")
    assert load_profile(path) == {SYMBOL_BARS: pytest.approx(real_profile)}
    assert json.loads(path.read_text())["version"] == 1


def _write(tmp_path: Path, payload: object, raw: str | None = None) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(raw if raw is not None else json.dumps(payload))
    return path


def _payload(curve: list[float]) -> dict[str, object]:
    return {"schema": "zhixing.volume_profile", "version": 1, "profiles": {"*": curve}}


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing", "not found"),
        ("bad_json", "not valid JSON"),
        ("version", "version"),
        ("short", "expected 240 values"),
        ("negative", "minute 3"),
        ("nan", "minute 0"),
        ("sum", "sum to"),
    ],
)
def test_bad_profile_files_name_the_file_and_the_problem(tmp_path: Path, case: str, needle: str) -> None:
    even = [1 / SESSION_MINUTES] * SESSION_MINUTES
    if case == "missing":
        path = tmp_path / "nope.json"
    elif case == "bad_json":
        path = _write(tmp_path, None, raw="{not json")
    elif case == "version":
        path = _write(tmp_path, {**_payload(even), "version": 99})
    elif case == "short":
        path = _write(tmp_path, _payload(even[:-1]))
    elif case == "negative":
        curve = list(even)
        curve[3], curve[4] = -curve[3], 3 * curve[4]
        path = _write(tmp_path, _payload(curve))
    elif case == "nan":
        path = _write(tmp_path, _payload([float("nan"), *even[1:]]))
    else:
        path = _write(tmp_path, _payload([2 * v for v in even]))
    with pytest.raises(InputError, match=needle) as info:
        load_profile(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------ maths
def test_weighted_targets_are_exact_monotone_and_on_the_lot_grid() -> None:
    targets = weighted_targets(10_050, [3.0, 1.0, 0.0, 1.0, 5.0], 100)
    assert targets[-1] == 10_050
    assert targets == sorted(targets)
    assert all(t % 100 == 0 for t in targets[:-1])
    assert targets[0] == 3_000
    assert weighted_targets(500, [0.0, 0.0], 100) == [300, 500]  # no weight: even
    assert weighted_targets(1_000, [1.0, 1.0], 100, base=300) == [800, 1_300]


def test_session_minute() -> None:
    assert session_minute(at("09:30")) == 0
    assert session_minute(at("11:29:59")) == 119
    assert session_minute(at("11:30")) is None
    assert session_minute(at("13:00")) == 120
    assert session_minute(at("14:59:30")) == 239


# ------------------------------------------------------------------------------------------ the algorithm
async def test_vwap_tracks_the_real_profile(profile_file: Path, real_profile: list[float]) -> None:
    world = await vwap_world()
    parent = make_parent(100_000, profile=str(profile_file), max_participation="1")
    algo = VwapAlgo(parent, context(world))
    algo.start()
    set_volume(world, 10**9)  # a liquid market: the cap does not bind
    await world.run_until(at("15:00"))
    sent = [o.quantity for o in world.broker.submitted]
    assert sum(sent) == 100_000 == algo.filled_quantity
    assert algo.done
    assert algo.parent.status is ParentStatus.DONE
    assert algo.targets[-1] == 100_000
    times = world.broker.submit_times
    first = sum(q for q, t in zip(sent, times, strict=True) if t < at("09:35"))
    midday = sum(q for q, t in zip(sent, times, strict=True) if at("11:00") <= t < at("11:05"))
    assert first > 2 * midday
    # cumulative sent follows the cumulative profile mass of the slices (within a lot)
    weights = algo.weights
    total = math.fsum(weights)
    running = 0.0
    cum = 0
    for i, t in enumerate(algo.slice_times):
        running += weights[i]
        cum += sum(q for q, ts in zip(sent, times, strict=True) if ts == t)
        assert abs(cum - running / total * 100_000) <= 100
    # minute weights are the profile's (one slice per minute)
    assert weights[0] == pytest.approx(real_profile[0])
    assert weights[120] == pytest.approx(real_profile[120])


async def test_vwap_never_exceeds_the_parent_with_a_sell_tail_and_u_shape() -> None:
    world = await vwap_world()
    algo = VwapAlgo(
        make_parent(1_050, side=Side.SELL, end="10:30", profile="u_shape", max_participation="1"),
        context(world),
    )
    algo.start()
    set_volume(world, 10**9)
    await world.run_until(at("10:31"))
    assert sum(o.quantity for o in world.broker.submitted) == 1_050
    assert world.broker.submitted[-1].quantity % 100 == 50
    assert algo.filled_quantity == 1_050
    assert world.oms.counters.overfill_alarms == 0


async def test_participation_cap_holds_filled_plus_working(profile_file: Path) -> None:
    world = await vwap_world()
    set_volume(world, 50_000)  # volume before the start does not count
    algo = VwapAlgo(make_parent(1_000_000, profile=str(profile_file)), context(world))
    algo.start()
    await world.run_until(at("09:45"))
    assert sum(o.quantity for o in world.broker.submitted) == 100  # no market volume: one lot only
    volume = 50_000
    for minute in range(45, 59):
        volume += 10_000
        set_volume(world, volume)
        await world.run_until(at(f"09:{minute + 1}"))
        observed = volume - 50_000
        done = algo.filled_quantity + algo.working_quantity
        assert algo.market_volume == observed
        assert done <= 0.2 * observed + 100
    assert algo.filled_quantity == 0.2 * 140_000 + 100  # the cap binds: behind the profile
    assert algo.remaining > 0


# ------------------------------------------------------------------------------------------ refusals
async def test_missing_or_unknown_profile_refuses_to_start(tmp_path: Path) -> None:
    world = await vwap_world()
    with pytest.raises(ValueError, match="'profile' is required"):
        VwapAlgo(make_parent(), context(world))
    missing = tmp_path / "no_such_profile.json"
    with pytest.raises(InputError, match=r"no_such_profile\.json"):
        VwapAlgo(make_parent(profile=str(missing)), context(world))
    with pytest.raises(ValueError, match="max_participation"):
        VwapParams.parse({"profile": "u_shape", "max_participation": "0"})
    with pytest.raises(ValueError, match="vwap parameter 'interval_s'"):
        VwapParams.parse({"profile": "u_shape", "interval_s": "0"})
    other = save_profile({"000002.SZ": u_shaped_profile()}, tmp_path / "other.json")
    with pytest.raises(InputError, match=r"no volume profile for 600000\.SH"):
        VwapAlgo(make_parent(profile=str(other)), context(world))
    assert world.broker.submitted == []


@pytest.mark.skipif("vwap" not in ALGOS, reason="algos/registry.py does not register vwap yet")
async def test_registry_knows_vwap() -> None:
    assert ALGOS["vwap"] is VwapAlgo
    assert ("vwap", "profile") in {(a, p) for a, p, _d, _h in describe_algos()}
    world = await vwap_world()
    assert isinstance(create_algo(make_parent(profile="u_shape"), context(world)), VwapAlgo)


async def test_state_round_trips(profile_file: Path) -> None:
    world = await vwap_world(fill=False)
    parent = make_parent(10_000, profile=str(profile_file), end="10:00")
    algo = VwapAlgo(parent, context(world))
    algo.start()
    set_volume(world, 10**6)
    await world.run_until(at("09:40:30"))
    state = json.loads(json.dumps(algo.state()))
    again = VwapAlgo(parent, context(world))
    again.restore(state)
    assert again.targets == algo.targets
    assert again.weights == pytest.approx(algo.weights)
    assert again.market_volume == algo.market_volume


# ------------------------------------------------------------------------------------------ cli
def test_cli_profile_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    profile_cmd.add_parsers(parser.add_subparsers(dest="command"))
    out = tmp_path / "p.json"
    args = parser.parse_args(["profile", "build", "--bars", str(BARS), "--out", str(out), "--pooled"])
    assert args.handler(args) == 0
    assert "1 symbol(s), 21 day(s)" in capsys.readouterr().out
    assert list(load_profile(out)) == [POOLED_KEY]
