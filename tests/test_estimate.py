"""The wait estimate's rule, its wording, and its aggregates under concurrent updates."""
import threading
from datetime import datetime, timedelta, timezone

import pytest

from callback.domain.estimate import (
    BUCKET,
    CAP_MINUTES,
    Departures,
    Estimate,
    bucket_start,
    estimate_wait,
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
])
def test_spoken_wait(estimate, words):
    assert spoken_wait(estimate) == words


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
