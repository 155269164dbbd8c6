"""Clocks: the only place the app reads the time, so tests and local runs control it."""
import threading
import time
from datetime import datetime, timedelta, timezone


class SystemClock:
    """Real UTC time."""

    def now(self):
        """The current time, timezone-aware UTC."""
        return datetime.now(timezone.utc)


def fixed_start(today=None):
    """15:00 UTC on the first Monday of the first January at least a week after `today`."""
    today = today or datetime.now(timezone.utc)
    year = today.year
    while True:
        new_year = datetime(year, 1, 1, 15, tzinfo=timezone.utc)
        monday = new_year + timedelta(days=-new_year.weekday() % 7)
        if monday >= today + timedelta(days=7):
            return monday
        year += 1


class FixedClock:
    """A clock that moves only when told: for tests.

    It starts at the same weekday, hour and week of the year in every run, but ahead of the
    real time, not at a fixed date: DynamoDB deletes items whose TTL attribute is past by the
    real time, and so does DynamoDB Local (within seconds), so a clock set in the past would
    see its sessions, login throttles, counters and waiting calls vanish mid-test. Ahead of
    real time, TTL deletion never overtakes the app's own expiry checks, as in production.
    """

    def __init__(self, start=None):
        self._now = start or fixed_start()
        self._lock = threading.Lock()

    def now(self):
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds=0, minutes=0):
        """Move time forward."""
        with self._lock:
            self._now += timedelta(seconds=seconds, minutes=minutes)
            return self._now


class ScaledClock:
    """Real time sped up by a factor, for watching retries happen in local runs."""

    def __init__(self, speed):
        self._lock = threading.Lock()
        self.speed = float(speed)
        self._origin_wall = time.time()
        self._origin = datetime.now(timezone.utc)

    def now(self):
        """Origin plus elapsed wall time times the speed."""
        with self._lock:
            elapsed = (time.time() - self._origin_wall) * self.speed
            return self._origin + timedelta(seconds=elapsed)

    def set_speed(self, speed):
        """Change the speed from now on, without jumping."""
        current = self.now()
        with self._lock:
            self._origin, self._origin_wall, self.speed = current, time.time(), float(speed)

    def jump_to(self, moment):
        """Move the clock forward to `moment` (a local run's "it is 16:58 now"); never back,
        since records already written must not come from the future."""
        current = self.now()
        if moment > current:
            with self._lock:
                self._origin, self._origin_wall = moment, time.time()
