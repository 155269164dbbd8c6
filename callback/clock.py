"""Clocks: the only place the app reads the time, so tests and local runs control it."""
import threading
import time
from datetime import datetime, timedelta, timezone


class SystemClock:
    """Real UTC time."""

    def now(self):
        """The current time, timezone-aware UTC."""
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that moves only when told: for tests."""

    def __init__(self, start=None):
        self._now = start or datetime(2026, 1, 5, 15, 0, 0, tzinfo=timezone.utc)
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
