"""Wallboard reads per refresh as history grows (`make bench ARGS="--only wallboard"`).
The figures must cost a fixed number of DynamoDB reads whatever the number of stored
callbacks and hourly counter items."""
import time
from datetime import timedelta

SECTION = "## Wallboard reads per refresh"


def section(sizes, days=30):
    """The section's lines: one refresh of the figures at each history size, in moto."""
    from moto import mock_aws

    from bench.records import dynamodb_calls, load_callbacks
    from callback.clock import FixedClock
    from callback.config import Config
    from callback.domain import records as m
    from callback.domain import stats
    from callback.work.wiring import build_services

    lines = [f"{SECTION} (2 queues, {days} days of hourly counters; moto in-process)", ""]
    rows = []
    for size in sizes:
        with mock_aws():
            clock = FixedClock()
            config = Config(CALLBACK_TABLE_PREFIX=f"w{size}-", TWILIO_API_BASE_URL="http://127.0.0.1:9",
                            LOG_LEVEL="WARNING").with_overrides({"clock": clock})
            svc = build_services(config)
            svc.storage.create_tables()
            svc.storage.save_ivr(m.Ivr("Main Line", numbers=("+15005550006",),
                                       queues=(m.Queue("Sales", "Main Line", 10),
                                               m.Queue("Support", "Main Line", 5))))
            load_callbacks(svc, clock, size, due=100)
            load_counters(svc, clock, days)
            now = clock.now()
            for i in range(20):
                svc.storage.add_waiting_call(f"CAH{i}", ivr_name="Main Line", queue_name="Sales",
                                             caller="+1", joined_at=now - timedelta(minutes=i))
                svc.storage.create_callback(m.Callback(f"CAP{i}", f"+1212555{i:04d}", "Main Line", "Sales",
                                                       now, now, 10, now, now + timedelta(hours=2)),
                                            f"CAP{i}")
            with dynamodb_calls() as calls:
                start = time.perf_counter()
                figures = stats.collect(svc.storage, svc.storage.list_ivrs(), clock.now())
                elapsed = time.perf_counter() - start
            assert figures["queues"][0]["now"]["holding"] == 20
            assert figures["queues"][0]["now"]["pending_callbacks"] == 20
            rows.append((size, calls["n"], calls["scanned"], elapsed))
    lines += ["| stored callbacks | DynamoDB calls per refresh | items examined (ScannedCount) "
              "| ratio of calls to smallest | refresh s (moto) |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for size, n, scanned, elapsed in rows:
        lines.append(f"| {size:,} | {n} | {scanned} | {n / rows[0][1]:.2f} | {elapsed:.2f} |")
    lines += ["",
              "One refresh: IVRs (one Query), agents (one Query), callbacks being dialed (one Query), and per queue two",
              "counts, two first-in-line reads and one Query of at most 25 hourly counter items. With",
              "20 callers holding and 20 callbacks pending in one queue, the items examined are those,",
              "plus the counters of the last 24 hours and today, whatever the finished callbacks and",
              "older counters stored. Moto's time grows with the table (it walks every item per",
              "query); DynamoDB's follows the items examined.",
              ""]
    return lines


def load_counters(svc, clock, days):
    """`days` of hourly counters for both queues, as the app's transitions leave them."""
    from callback.domain import stats

    Stats = svc.storage.Stats
    with Stats.batch_write() as batch:
        for queue in ("Sales", "Support"):
            for hour in range(days * 24):
                when = clock.now() - timedelta(hours=hour)
                batch.save(Stats(f"HOURLY#{queue}", stats.hour_key(when), ivr_name="Main Line",
                                 requested=5, completed=4, connected=4, wait_2=4))
