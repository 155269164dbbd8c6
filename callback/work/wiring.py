"""Wiring: the services one app (or one sweep run) works with."""
from dataclasses import dataclass

from callback.clock import ScaledClock, SystemClock
from callback.storage import Storage
from callback.storage.directory import Directory
from callback.telephony.rest import Telephony
from callback.work.dispatch import Dispatcher
from callback.work.handoff import Handoff, runner_for


@dataclass
class Services:
    """Everything a handler or the sweep needs, built once per process."""

    config: object
    clock: object
    storage: Storage
    telephony: Telephony
    directory: Directory
    dispatcher: Dispatcher
    handoff: Handoff | None = None


def default_clock(config):
    """Real time, or sped-up time in a local run that asked for it."""
    if config.extra.get("local_run") or config.LOCAL_CLOCK_SPEED != 1.0:
        return ScaledClock(config.LOCAL_CLOCK_SPEED)
    return SystemClock()


def build_services(config):
    """Storage, telephony, directory and dispatcher for this configuration."""
    clock = config.extra.get("clock") or default_clock(config)
    storage = Storage(config)
    telephony = Telephony(config)
    directory = Directory(storage, config.CONFIG_CACHE_SECONDS)
    dispatcher = Dispatcher(storage, telephony, directory, clock, config)
    services = Services(config, clock, storage, telephony, directory, dispatcher)
    services.handoff = Handoff(runner_for(services))
    return services
