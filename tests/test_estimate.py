"""The wait estimate's rule, its wording, and its aggregates under concurrent updates."""
import threading
from datetime import datetime, timezone

import pytest

from callback.domain.customer_clock import customer_clock
from callback.domain.estimate import (
    BUCKET,
    CAP_MINUTES,
    Departures,
    Estimate,
    ExpectedCall,
    bucket_start,
    estimate_wait,
    expected_call,
    gamma_quantile,
    history_since,
    spoken_wait,
)

NOW = datetime(2026, 1, 5, 15, 2, 30, tzinfo=timezone.utc)


def steady(per_bucket, buckets=7, now=NOW):
    """`per_bucket` departures in each of the last `buckets` buckets up to now."""
    start = bucket_start(now)
    return [Departures(start - i * BUCKET, per_bucket) for i in range(buckets)]


def test_buckets_are_five_minutes_and_the_window_starts_on_one():
    assert bucket_start(NOW) == datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)
    assert bucket_start(datetime(2026, 1, 5, 15, 5, tzinfo=timezone.utc)).minute == 5
    assert history_since(NOW) == datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("departures, ahead, expected", [
    # 7 buckets from 14:30 to 15:02:30 = 32.5 minutes; 65 departures = one every 30 s.
    (steady(10, 7)[1:] + [Departures(bucket_start(NOW), 5)], 0, Estimate(1)),
    (steady(10, 7)[1:] + [Departures(bucket_start(NOW), 5)], 23, Estimate(12)),
    # One departure every 6.5 minutes (5 in 32.5): two ahead wait three of them.
    ([Departures(bucket_start(NOW) - i * BUCKET, 1) for i in range(5)], 2, Estimate(20)),
    # Rounds to the nearest whole minute, never below one.
    (steady(100), 0, Estimate(1)),
    # Too slow: capped, never a three-hour promise.
    ([Departures(bucket_start(NOW) - i * BUCKET, 1) for i in range(5)], 30, Estimate(CAP_MINUTES, True)),
    # Too little history: three departures in the window say nothing reliable.
    ([Departures(bucket_start(NOW), 3)], 0, None),
    # Nobody took work for over ten minutes: agents are away, history says nothing.
    ([Departures(bucket_start(NOW) - 4 * BUCKET, 40)], 0, None),
    # Buckets older than the window do not count.
    ([Departures(history_since(NOW) - BUCKET, 50), Departures(bucket_start(NOW), 2)], 0, None),
    # No history at all, or no position known.
    ([], 0, None),
    (steady(10), None, None),
    (steady(10), -1, None),
])
def test_estimate_rule(departures, ahead, expected):
    assert estimate_wait(departures, ahead, NOW) == expected


@pytest.mark.parametrize("agents_on_duty, expected", [(None, Estimate(1)), (3, Estimate(1)), (0, None)])
def test_no_estimate_when_no_agent_of_the_queue_is_signed_in(agents_on_duty, expected):
    assert estimate_wait(steady(10), 0, NOW, agents_on_duty) == expected


def test_more_ahead_never_means_a_shorter_wait():
    history = steady(3)
    waits = [estimate_wait(history, ahead, NOW).minutes for ahead in range(40)]
    assert waits == sorted(waits)


@pytest.mark.parametrize("estimate, words", [
    (Estimate(1), "about 1 minute"),
    (Estimate(12), "about 12 minutes"),
    (Estimate(CAP_MINUTES, True), f"more than {CAP_MINUTES} minutes"),
    (Estimate(5, low=2, high=9), "2 to 9 minutes"),
    (Estimate(1, low=1, high=2), "about 2 minutes"),
    (Estimate(1, low=1, high=1), "about 1 minute"),
    (Estimate(45, low=30, high=70), "30 minutes to more than an hour"),
])
def test_spoken_wait(estimate, words):
    assert spoken_wait(estimate) == words


@pytest.mark.parametrize("ahead, low, high", [
    # One departure every 28 s (steady(10)): the range of a sum of ahead + 1 such gaps, from
    # its 10th to its 95th percentile, in whole minutes.
    (0, 1, 2), (9, 2, 8), (23, 8, 16),
])
def test_the_range_said_spans_the_waits_spread(ahead, low, high):
    estimate = estimate_wait(steady(10), ahead, NOW)
    assert (estimate.low, estimate.high, estimate.promised) == (low, high, high)
    assert estimate.low <= estimate.minutes <= estimate.high


def test_the_promise_is_the_ranges_end_and_over_the_cap_none():
    assert Estimate(5, low=2, high=9).promised == 9
    assert Estimate(5).promised == 5
    assert Estimate(CAP_MINUTES, True).promised is None


@pytest.mark.parametrize("n, z, expected", [
    # Exact quantiles of a sum of n exponential gaps of mean 1 each, total mean n.
    (1, 1.2816, 2.303), (1, 1.645, 2.996), (4, 1.645, 7.754), (10, -1.2816, 6.221),
])
def test_the_gamma_quantile_is_within_a_few_percent(n, z, expected):
    assert gamma_quantile(n, n, z) == pytest.approx(expected, rel=0.03)


NY = "+12125551234"


@pytest.mark.parametrize("moment, estimate, expected", [
    # 10:00 in New York: the range, nothing about hours.
    (datetime(2027, 1, 4, 15, 0, tzinfo=timezone.utc), Estimate(5, low=2, high=9),
     ExpectedCall(Estimate(5, low=2, high=9))),
    # 07:12: the window is closed; the call comes after it opens.
    (datetime(2027, 1, 4, 12, 12, tzinfo=timezone.utc), Estimate(5, low=2, high=9),
     ExpectedCall(opens="8 a.m.")),
    # 19:55, and the range runs past 20:00: they hear when calls stop.
    (datetime(2027, 1, 5, 0, 55, tzinfo=timezone.utc), Estimate(5, low=2, high=9),
     ExpectedCall(Estimate(5, low=2, high=9), closes="8 p.m.")),
    (datetime(2027, 1, 5, 0, 55, tzinfo=timezone.utc), None, ExpectedCall(None)),
])
def test_the_promise_honours_the_customers_hours(moment, estimate, expected):
    assert expected_call(estimate, customer_clock(NY), moment) == expected


def test_departure_counts_survive_concurrent_updates(svc, clock):
    """Many Lambdas count departures at once (threads against DynamoDB over HTTP): atomic
    ADDs lose none, and each bucket keeps its own count."""
    now = clock.now()
    earlier = now - BUCKET
    barrier = threading.Barrier(8)
    errors = []

    def worker(moment):
        try:
            barrier.wait()
            for _ in range(15):
                svc.storage.count_departure("Sales", moment)
        except Exception as exc:  # reported below: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(now if i % 2 else earlier,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = {d.start: d.count for d in svc.storage.recent_departures("Sales", history_since(now))}
    assert counts == {bucket_start(now): 60, bucket_start(earlier): 60}
    assert svc.storage.recent_departures("Support", history_since(now)) == []
