"""Wiring: the services one process works with, and the process entry points that build
them: Lambda's asynchronous dispatch invocation and the scheduled sweep.

Everything else in work/ takes its services as an argument; only this module builds them,
so nothing imports it back (the Flask app calls `build_services` too).
"""
import logging
import time
from dataclasses import dataclass

from callback import logs, metrics
from callback.clock import ScaledClock, SystemClock
from callback.config import Config
from callback.storage import Storage
from callback.storage.directory import Directory
from callback.storage.parameter_store import with_parameters
from callback.telephony.rest import Telephony
from callback.work.dispatch import Dispatcher
from callback.work.handoff import Handoff, dispatch_pending, runner_for, send_now, settle_now
from callback.work.sweep import sweep_once

log = logging.getLogger(__name__)


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
    metrics.configure(config.METRICS == "on" or (not config.METRICS and bool(config.AWS_LAMBDA_FUNCTION_NAME)),
                      config.AWS_LAMBDA_FUNCTION_NAME, config.extra.get("metrics_sink"))
    storage = Storage(config)
    storage.clock = clock
    telephony = Telephony(config)
    directory = Directory(storage, config.CONFIG_CACHE_SECONDS)
    dispatcher = Dispatcher(storage, telephony, directory, clock, config)
    services = Services(config, clock, storage, telephony, directory, dispatcher)
    services.handoff = Handoff(runner_for(services, run_dispatch, run_settle, run_texts), clock)
    dispatcher.later = services.handoff.settle_later
    dispatcher.send_later = services.handoff.send_texts
    return services


# -- process entry points: Zappa calls these by their import path --------------------

def _services_from_env(overrides=None):
    """The services of an entry point that runs outside any Flask request: configuration
    from the environment (and Parameter Store, as the app reads it), then `overrides`,
    logging installed."""
    config = Config.from_env()
    logs.install(config.LOG_LEVEL)
    config = with_parameters(config)
    return build_services(config.with_overrides(overrides) if overrides else config)


_dispatch_services = None


def run_dispatch(queue_names=None):
    """Entry point of the asynchronous Lambda invocation a hand-off asks for (Zappa routes
    it here: `handoff.LambdaRunner` names this function as the task)."""
    global _dispatch_services
    if _dispatch_services is None:
        # This invocation is the dispatch: it must not hand itself over again.
        _dispatch_services = _services_from_env({"DISPATCH_RUNNER": "inline"})
    offers = dispatch_pending(_dispatch_services, queue_names)
    log.info("dispatch for %s: %d offers", queue_names or "all queues", len(offers))
    return {"offers": len(offers)}


# A quick retry pauses at most this long in its invocation (the function's timeout is 30 s).
LONGEST_SETTLE_PAUSE = 15.0


def run_settle(numbers, after_seconds=0.0):
    """Entry point of the asynchronous invocation that retries legs soon (`settle_later`):
    pause, then settle the legs holding these numbers."""
    global _dispatch_services
    if _dispatch_services is None:
        _dispatch_services = _services_from_env({"DISPATCH_RUNNER": "inline"})
    time.sleep(max(0.0, min(float(after_seconds), LONGEST_SETTLE_PAUSE)))
    settle_now(_dispatch_services, numbers)
    return {"legs": len(numbers)}


def run_texts(keys):
    """Entry point of the asynchronous invocation that sends stored texts (`send_texts`)."""
    global _dispatch_services
    if _dispatch_services is None:
        _dispatch_services = _services_from_env({"DISPATCH_RUNNER": "inline"})
    send_now(_dispatch_services, keys)
    return {"texts": len(keys)}


_sweep_services = None


def run_sweep(event=None, context=None):
    """Entry point for the CloudWatch schedule (zappa_settings.json `events`): one sweep,
    within what the Lambda invocation (`context`) has left."""
    global _sweep_services
    if _sweep_services is None:
        _sweep_services = _services_from_env()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    report = sweep_once(_sweep_services, time_left=(lambda: remaining() / 1000) if remaining else None)
    log.info("sweep: %s", report)
    return vars(report)
