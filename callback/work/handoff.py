"""Dispatch off the caller's path: a webhook decides and stores, then hands dispatch over.

Dispatch may ring several agents through Twilio's REST API; a webhook must answer Twilio
within seconds whatever Twilio does, so it only asks for a dispatch of the queues it
changed and returns. Where that dispatch runs is configuration (DISPATCH_RUNNER):

- `lambda` (the default on AWS Lambda): Zappa's own asynchronous tasks
  (`zappa.asynchronous.run`) invoke this same function with InvocationType=Event; Zappa's
  handler routes the event to the task the runner is given (`wiring.run_dispatch`, the
  process entry point, which builds its services and calls `dispatch_pending`). The role
  may invoke exactly this function.
- `thread` (the default elsewhere, as in `make run`): a background worker thread.
- `inline`: in the request, once its answer is decided (tests).

Each runner coalesces a burst into one pending dispatch per queue. A dispatch that runs
twice, late or never is harmless: work is claimed in transactions, so nothing is dialed
twice, and the sweep dispatches every minute whatever was missed.

The same runners carry the ledger's quick retries: a notice or hang-up Twilio refused
(429, 5xx, a timeout) is tried again seconds later (`settle_later`), not at the next minute
sweep, so an agent never waits a minute alone in a conference. A retry that runs late,
twice or never is harmless too: the leg is read again, and the sweep settles it anyway.

And they send texts to customers (`send_texts`: `callback.work.texts`), which must not keep
a webhook waiting on Twilio's Messages API: a send that runs twice is harmless (each text is
claimed before it is sent), and one that never runs is the sweep's.
"""
import logging
import threading
from datetime import timedelta

log = logging.getLogger(__name__)

ALL_QUEUES = "*"
# How long a requested Lambda dispatch stands for every later request of its queue. An
# invocation that never comes blocks nothing for longer: the next request invokes again.
PENDING_FOR = timedelta(seconds=30)
RUNNERS = ("lambda", "thread", "inline")


def _keys(queue_names):
    return sorted(set(queue_names)) if queue_names else [ALL_QUEUES]


def _queue_names(keys):
    return None if ALL_QUEUES in keys else sorted(keys)


def dispatch_now(svc, queue_names=None):
    """The dispatch every runner runs: offer work to the available agents of these queues
    (all queues when None). Never raises: the sweep catches anything missed."""
    try:
        return svc.dispatcher.dispatch(queue_names=queue_names or None)
    except Exception:
        log.exception("dispatch for %s failed; the sweep will catch up", queue_names or "all queues")
        return []


def dispatch_pending(svc, queue_names=None):
    """A requested Lambda dispatch starts: first let later changes request a new one, then
    dispatch (so nothing stored after the dispatch has read the line is left waiting)."""
    try:
        svc.storage.dispatch_started(_keys(queue_names))
    except Exception:  # the marks expire on their own
        log.exception("could not clear the pending-dispatch marks of %s", queue_names or "all queues")
    return dispatch_now(svc, queue_names)


def send_now(svc, keys):
    """Send these stored texts (each claimed first, so a second run sends nothing). Never
    raises: the sweep sends whatever is left."""
    for key in keys:
        try:
            svc.dispatcher.send_text(key)
        except Exception:
            log.exception("could not send text %s; the sweep will try again", key)


def settle_now(svc, numbers):
    """The ledger looks again at the legs holding these numbers (a quick retry of a notice
    or hang-up that failed). Never raises: the sweep settles whatever is left."""
    for number in numbers:
        try:
            leg = svc.storage.get_leg(number)
            if leg is not None:
                svc.dispatcher.sweep_leg(leg, svc.clock.now())
        except Exception:
            log.exception("could not settle a leg; the sweep will look again")


class InlineRunner:
    """Dispatch in the request itself (tests: their sweeps settle legs)."""

    def __init__(self, svc):
        self.svc = svc

    def submit(self, queue_names):
        """Run the dispatch now."""
        dispatch_now(self.svc, queue_names)

    def settle(self, numbers, after_seconds):
        """Nothing: a test's own sweep settles legs, at the time its clock says."""

    def send_texts(self, keys):
        """Send the texts now."""
        send_now(self.svc, keys)


class ThreadRunner:
    """One background worker; requests arriving while it works are merged into its next run."""

    def __init__(self, run, settle=None, send=None):
        self._run = run
        self._settle = settle
        self._send = send
        self._pending = set()
        self._wake = threading.Condition()
        self._thread = None

    def settle(self, numbers, after_seconds):
        """Settle these numbers' legs after a pause, on a timer thread."""
        if self._settle is not None:
            timer = threading.Timer(after_seconds, self._settle, args=[numbers])
            timer.daemon = True
            timer.start()

    def send_texts(self, keys):
        """Send these texts on a thread of their own."""
        if self._send is not None:
            threading.Thread(target=self._send, args=[keys], name="texts", daemon=True).start()

    def submit(self, queue_names):
        """Queue a dispatch of these queues (merged with any already waiting)."""
        with self._wake:
            self._pending.update(_keys(queue_names))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="dispatch", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _work(self):
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                keys, self._pending = self._pending, set()
            try:
                self._run(_queue_names(keys))
            except Exception:  # the worker must outlive any one dispatch
                log.exception("background dispatch failed")


class _LambdaClientSession:
    """What zappa.asynchronous asks its `boto_session` for: a Lambda client (ours, with
    short timeouts, so a slow Lambda API cannot hold a webhook)."""

    def __init__(self, client):
        self._client = client

    def client(self, service_name):
        """The Lambda client, whatever the name (Zappa asks only for "lambda")."""
        return self._client


class LambdaRunner:
    """Zappa's asynchronous invocation of this same function, one pending per queue: it
    runs `task` (a module-level function, named to Zappa by its import path) there.

    Its AWS clients are made when the app is built, in the Lambda's init phase (which runs
    at full CPU), not on the first caller's webhook that hands a dispatch over: importing
    zappa.asynchronous builds its own clients, and ours loads the Lambda API's model.
    """

    def __init__(self, svc, task, settle_task=None, text_task=None):
        import boto3
        from botocore.config import Config as BotoConfig
        from zappa.asynchronous import run

        self.svc = svc
        self._task = task
        self._settle_task = settle_task
        self._text_task = text_task
        self._run = run
        config = svc.config
        client = boto3.client(
            "lambda", region_name=config.AWS_REGION, endpoint_url=config.AWS_ENDPOINT_URL_LAMBDA or None,
            # One try: a hand-off that fails costs the caller nothing (the sweep dispatches
            # within a minute); a retry's backoff would.
            config=BotoConfig(connect_timeout=1, read_timeout=2,
                              retries={"total_max_attempts": 1, "mode": "standard"}))
        self._session = _LambdaClientSession(client)

    def submit(self, queue_names):
        """Invoke a dispatch unless one is already pending for every queue asked for."""
        now = self.svc.clock.now()
        keys = [key for key in _keys(queue_names) if self._mark(key, now)]
        if not keys:
            return
        config = self.svc.config
        try:
            response = self._run(self._task, args=[_queue_names(keys)],
                                 remote_aws_lambda_function_name=config.AWS_LAMBDA_FUNCTION_NAME,
                                 remote_aws_region=config.AWS_REGION, boto_session=self._session)
            if not response.sent:
                raise RuntimeError(f"Lambda did not accept the invocation: {response.response}")
        except Exception:
            self.svc.storage.dispatch_started(keys)  # not pending after all: let the next one try
            raise

    def settle(self, numbers, after_seconds):
        """Invoke `settle_task` (which pauses, then settles these numbers' legs)."""
        if self._settle_task is None:
            return
        config = self.svc.config
        response = self._run(self._settle_task, args=[list(numbers), after_seconds],
                             remote_aws_lambda_function_name=config.AWS_LAMBDA_FUNCTION_NAME,
                             remote_aws_region=config.AWS_REGION, boto_session=self._session)
        if not response.sent:
            raise RuntimeError(f"Lambda did not accept the invocation: {response.response}")

    def send_texts(self, keys):
        """Invoke `text_task` (which sends these stored texts)."""
        if self._text_task is None:
            return
        config = self.svc.config
        response = self._run(self._text_task, args=[list(keys)],
                             remote_aws_lambda_function_name=config.AWS_LAMBDA_FUNCTION_NAME,
                             remote_aws_region=config.AWS_REGION, boto_session=self._session)
        if not response.sent:
            raise RuntimeError(f"Lambda did not accept the invocation: {response.response}")

    def _mark(self, key, now):
        try:
            return self.svc.storage.request_dispatch(key, now, now + PENDING_FOR)
        except Exception:  # without the mark, invoke anyway: a second dispatch is harmless
            log.exception("could not mark a dispatch of %s as pending", key)
            return True


class Handoff:
    """What webhooks call: ask for a dispatch, never wait for it, never fail for it."""

    def __init__(self, runner, clock=None):
        self.runner = runner
        self.clock = clock

    def dispatch(self, queue_names=None):
        """Have the available agents of these queues (all when None) offered work."""
        try:
            self.runner.submit(list(queue_names) if queue_names else None)
        except Exception:
            log.exception("could not hand over a dispatch of %s; the sweep will catch up",
                          queue_names or "all queues")


    def settle_later(self, numbers, after):
        """Have the ledger look at these numbers' legs again `after` (a timedelta of the
        app's clock) from now; never fails (the sweep settles them anyway)."""
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        try:
            self.runner.settle(sorted(set(numbers)), after.total_seconds() / speed)
        except Exception:
            log.exception("could not hand over a retry of %d legs; the sweep will look again", len(numbers))

    def send_texts(self, keys):
        """Have these stored texts sent off this request; never fails (the sweep sends them)."""
        send = getattr(self.runner, "send_texts", None)
        if send is None:
            return
        try:
            send(list(keys))
        except Exception:
            log.exception("could not hand over %d texts; the sweep will send them", len(keys))


def runner_for(svc, lambda_task, settle_task=None, text_task=None):
    """The runner configuration asks for (an object in `dispatch_runner` wins); the Lambda
    runner has Zappa invoke `lambda_task` (the process entry point that dispatches),
    `settle_task` (the one that retries legs) and `text_task` (the one that sends texts)."""
    config = svc.config
    injected = config.extra.get("dispatch_runner")
    if injected is not None:
        return injected
    name = config.DISPATCH_RUNNER or ("lambda" if config.AWS_LAMBDA_FUNCTION_NAME else "thread")
    if name == "lambda":
        return LambdaRunner(svc, lambda_task, settle_task, text_task)
    if name == "inline":
        return InlineRunner(svc)
    if name == "thread":
        return ThreadRunner(lambda queue_names: dispatch_now(svc, queue_names),
                            lambda numbers: settle_now(svc, numbers), lambda keys: send_now(svc, keys))
    raise ValueError(f"DISPATCH_RUNNER must be one of {', '.join(RUNNERS)}, not {name!r}")
