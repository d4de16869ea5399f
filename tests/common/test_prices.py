"""The price table and the bill it makes (`mgrecs.common.prices`), and the process meter's
peaks (`mgrecs.common.usage`): hand-computed figures at the default prices."""

import math

import pytest
from hypothesis import given, strategies

from mgrecs.common.prices import Totals, estimate, parse_tiers, prices_from, tiered
from mgrecs.common.settings import Settings
from mgrecs.common.usage import PEAK_TPS, PEAK_TPS_5MIN, Meter

DEFAULTS = prices_from(Settings(_env_file=None))  # type: ignore[call-arg]


def test_the_default_table_bills_a_known_month_as_computed_by_hand() -> None:
    totals = Totals(
        events=10_000,  # x 260 bytes = 0.0026 GB
        dataset_bytes=1e9,  # 1 GB imported
        training_hours=2.5,
        tps_hours=30_000,  # 20,000 at 0.20 + 10,000 at 0.10
        batch_inputs=25_000_000,  # 20M at 0.067 per 1,000 + 5M at 0.058
        stored_bytes=2e9,
    )

    lines = {line.item: line.usd for line in estimate(totals, DEFAULTS)}

    assert lines == pytest.approx(
        {
            "data ingestion": 1.0026 * 0.05,
            "training": 0.6,
            "real-time recommendations": 4000 + 1000,
            "batch recommendations": 20_000 * 0.067 + 5_000 * 0.058,
            "S3 storage": 0.046,
        }
    )
    assert DEFAULTS.taken == "2026-12-07"


def test_tiers_price_each_slice_at_its_own_rate() -> None:
    tiers = parse_tiers("10:1,20:0.5,inf:0.1")
    assert tiered(0, tiers) == 0
    assert tiered(5, tiers) == 5
    assert tiered(15, tiers) == 12.5
    assert tiered(120, tiers) == pytest.approx(10 + 5 + 10)


@pytest.mark.parametrize("text", ["", "10:1", "inf", "10:1,5:1,inf:1", "10:-1,inf:1", "a:b"])
def test_a_malformed_tier_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tiers(text)


@given(strategies.text(max_size=40))
def test_any_tier_text_parses_to_rising_tiers_or_is_refused(text: str) -> None:
    try:
        tiers = parse_tiers(text)
    except ValueError:
        return
    limits = [up_to for up_to, _ in tiers]
    assert limits == sorted(set(limits)) and limits[-1] == math.inf
    assert all(price >= 0 for _, price in tiers)


def test_the_meter_keeps_the_busiest_second_and_five_minutes_per_campaign() -> None:
    meter = Meter()
    t0 = 1_000_000_200.0  # the start of a 5-minute window
    for second in range(300):
        for _ in range(3 if second != 7 else 5):
            meter.call("api", "get_recommendations", "c1", now=t0 + second + 0.5)
    meter.call("api", "get_recommendations", "c2", now=t0)

    taken = meter.take("api").counts

    assert taken[("get_recommendations", "c1")] == 902
    assert taken[(PEAK_TPS, "c1")] == 5
    assert taken[(PEAK_TPS_5MIN, "c1")] == pytest.approx(902 / 300)
    assert taken[(PEAK_TPS, "c2")] == 1
    assert meter.take("api").counts == {}  # no call since: no peak
    meter.call("api", "get_recommendations", "c1", now=t0 + 299.9)  # the same second
    assert meter.take("api").counts == {
        ("get_recommendations", "c1"): 1,
        (PEAK_TPS, "c1"): 4,
        (PEAK_TPS_5MIN, "c1"): pytest.approx(903 / 300),
    }


def test_counts_put_back_after_a_failed_flush_are_taken_again() -> None:
    meter = Meter()
    meter.add("tracker", "events", 7)
    taken = meter.take("tracker")
    meter.add("tracker", "events", 3)
    meter.put_back("tracker", taken)
    assert meter.take("tracker").counts == {("events", ""): 10}


def test_a_malformed_tier_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="price_tps_hour_tiers"):
        Settings(_env_file=None, price_tps_hour_tiers="20000:0.2")  # type: ignore[call-arg]
