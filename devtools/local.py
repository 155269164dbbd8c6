"""`make run`: the whole app on this machine, no AWS or Twilio account needed.

DynamoDB is moto's server on loopback (unless AWS_ENDPOINT_URL_DYNAMODB points elsewhere),
Twilio's REST API is the stand-in, demo data is loaded, and the sweep runs every (scaled)
minute in the background, as CloudWatch would run it.
"""
import argparse
import json
import logging
import os
import secrets
import signal
import threading
import time
from datetime import datetime

from werkzeug.security import generate_password_hash

from callback.work.sweep import sweep_forever
from devtools.standin import StandInServer

SESSION_FILE = os.path.join(".local-data", "session.json")
log = logging.getLogger(__name__)
DEMO_NUMBER = "+15005550006"
DEMO_AGENTS = (("alice", "Alice", "+15005550101", ("Sales", "Support")),
               ("bob", "Bob", "+15005550102", ("Support",)))


_MOTO_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def serialize_moto_writes():
    """Make moto's DynamoDB keep DynamoDB's guarantees under concurrent requests.

    moto checks a write's condition and applies it in separate steps, and a failing
    transaction restores whole tables from a copy taken when it began, wiping out what
    other requests committed meanwhile. DynamoDB makes each write atomic and transactions
    serializable; one lock around moto's writes gives the same. Only `make run` needs it:
    moto is its embedded engine (no Java needed), and its threaded server and background
    sweep write at once, so without the lock a local demo could dial one callback twice.
    The tests run on DynamoDB Local, which needs no patch. Idempotent.
    """
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_callback_serialized", False):
        return
    lock = threading.RLock()

    def serialized(method):
        def call(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)

        call.__name__ = method.__name__
        return call

    for name in _MOTO_WRITES:
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))
    DynamoDBBackend._callback_serialized = True


def start_dynamodb():
    """moto's DynamoDB server on loopback for `make run`; returns (endpoint, server)."""
    from moto.server import ThreadedMotoServer

    serialize_moto_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server


def load_demo_data(svc):
    """IVR 'Main Line' (announced as Example Company), Sales and Support, two agents; idempotent.

    The local run's clock is the real time, so the demo IVR calls customers at any hour of
    theirs (00:00-23:59): `make call` works day and night. Its settings page changes that.
    Callers may choose a time (press 2 at the offer), three callbacks per queue and half-hour.
    """
    from callback.domain.records import Ivr, Queue
    from callback.domain.settings import CallbackSettings
    from callback.storage import Conflict

    try:
        # "Announce as" names the company the customer hears when called back: an IVR's
        # own name ("Main Line") means nothing to them.
        svc.storage.save_ivr(Ivr(
            "Main Line", numbers=(DEMO_NUMBER,),
            greeting="Thank you for calling Example Company.",
            # Texts on, through a made-up Messaging Service the stand-in accepts: `make call`
            # shows the confirmation and can reply to it (--sms-reply).
            settings=CallbackSettings(announce_as="Example Company", customer_hours_start="00:00",
                                      customer_hours_end="23:59", slot_capacity=3, sms_enabled=True,
                                      sms_service_sid="MG" + "0" * 32),
            queues=(Queue("Sales", "Main Line", 10, True), Queue("Support", "Main Line", 5, True))))
    except Conflict:
        pass
    for agent_id, name, phone, queues in DEMO_AGENTS:
        try:
            svc.storage.save_agent_profile(agent_id, name=name, phone=phone, queues=queues,
                                           now=svc.clock.now(), create=True)
        except Conflict:
            pass


def export_tables(storage, path):
    """Write every item of the app's tables to a JSON file (local persistence only)."""
    client = storage.Ivr._get_connection().connection.client
    data = {}
    for name in storage.table_names():
        items, kwargs = [], {"TableName": name}
        while True:
            page = client.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        data[name] = items
    with open(path, "w") as f:
        json.dump(data, f)


def import_tables(storage, path):
    """Load items written by export_tables."""
    if not os.path.exists(path):
        return 0
    client = storage.Ivr._get_connection().connection.client
    with open(path) as f:
        data = json.load(f)
    count = 0
    for name, items in data.items():
        if name in storage.table_names():
            for item in items:
                client.put_item(TableName=name, Item=item)
                count += 1
    return count


def local_controls(svc, api_token, base_speed):
    """Local-only endpoints (never in the deployed app): the simulator sets the clock speed,
    and moves the clock forward (`make call --at 16:58`).

    POST sets a speed for one simulator session and DELETE puts back the run's own speed
    (`make run --speed`), so a speed asked for by one `make call` does not outlive it. POST
    with `at` (an ISO time with its offset) moves the clock forward to it, for good: time
    never runs back.
    """
    import hmac

    from flask import Blueprint, abort, jsonify, request

    bp = Blueprint("local", __name__, url_prefix="/_local")

    @bp.before_request
    def bearer_token():
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), api_token.encode()):
            abort(401)

    def answer():
        return jsonify(speed=svc.clock.speed, run_speed=base_speed, now=svc.clock.now().isoformat())

    @bp.get("/clock")
    def clock_read():
        return answer()

    @bp.post("/clock")
    def clock_speed():
        body = request.get_json(silent=True) or {}
        if "at" in body:
            try:
                at = datetime.fromisoformat(body["at"])
            except (TypeError, ValueError):
                abort(400)
            if at.tzinfo is None:
                abort(400)
            svc.clock.jump_to(at)
            if "speed" not in body:
                return answer()
        speed = body.get("speed")
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.1 <= speed <= 1000:
            abort(400)
        svc.clock.set_speed(speed)
        return answer()

    @bp.delete("/clock")
    def clock_reset():
        svc.clock.set_speed(base_speed)
        return answer()

    from callback import csrf

    csrf.exempt(bp)
    return bp


def banner(session, password, dynamodb_url, standin_url, speed):
    """What `make run` prints: where everything is, and how to sign in to portal and API."""
    api = session["app_url"] + "/api"
    return f"""
callback is running.
  Admin portal:    {session['app_url']}/admin  (user: admin, password: {password})
  JSON API:        {api}  (bearer token: {session['api_token']})
                   curl -H "Authorization: Bearer {session['api_token']}" {api}/callbacks
  DynamoDB:        {dynamodb_url}
  Twilio stand-in: {standin_url}  (records the calls the app places)
  Public page:     {session['app_url']}/public/Main%20Line  (once Public Callback Page is on;
                   the code sent: {standin_url}/_standin/verify?to=%2B1…)
  Clock speed:     x{speed:g}
Place a call:      make call            (or: python -m devtools.simulator --help)
Stop with Ctrl-C.
"""


def main(argv=None):
    """Start everything and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m devtools.local", description="Run callback locally.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 5000)))
    parser.add_argument("--twilio-port", type=int, default=int(os.environ.get("TWILIO_STANDIN_PORT", 5001)))
    parser.add_argument("--speed", type=float, default=float(os.environ.get("LOCAL_CLOCK_SPEED", 1)),
                        help="simulated seconds per real second for the app's clock and sweep")
    parser.add_argument("--session", default=SESSION_FILE,
                        help="where to write URLs and tokens for the simulator")
    parser.add_argument("--persist", default=os.environ.get("LOCAL_PERSIST_FILE", ""),
                        help="keep the data in this JSON file between runs")
    args = parser.parse_args(argv)

    os.makedirs(os.path.dirname(os.path.abspath(args.session)), exist_ok=True)
    # moto and the stand-in log every request through werkzeug: keep the terminal readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "local")
    endpoint, dynamo = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"), None
    if not endpoint:
        endpoint, dynamo = start_dynamodb()
    standin = StandInServer(port=args.twilio_port).start()
    password = os.environ.get("LOCAL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    session = {
        "app_url": f"http://127.0.0.1:{args.port}", "twilio_url": standin.url,
        "auth_token": secrets.token_hex(16), "api_token": secrets.token_hex(16),
        "ivr_number": DEMO_NUMBER, "speed": args.speed,
    }
    overrides = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": session["auth_token"],
        "TWILIO_API_BASE_URL": standin.url, "PUBLIC_BASE_URL": session["app_url"],
        # The public callback page's codes: the stand-in plays Verify (GET /_standin/verify?to=…).
        "TWILIO_VERIFY_BASE_URL": standin.url, "TWILIO_VERIFY_SERVICE_SID": "VA" + "0" * 32,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "ADMIN_API_TOKEN": session["api_token"],
        "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD_HASH": generate_password_hash(password),
        "SECRET_KEY": secrets.token_hex(32), "SESSION_COOKIE_SECURE": False,
        # Tokens made on the portal's API tokens page last as long as the run's tables.
        "API_TOKEN_SECRET": secrets.token_hex(32),
        "LOCAL_CLOCK_SPEED": args.speed, "CONFIG_CACHE_SECONDS": 2, "local_run": True,
        # moto in this process shares the CPU with the app: allow it more than DynamoDB's 2 s.
        "DYNAMODB_TIMEOUT_SECONDS": 10,
    }
    from callback import create_app

    app = create_app(overrides)
    svc = app.extensions["callback"]
    app.register_blueprint(local_controls(svc, session["api_token"], args.speed))
    svc.storage.create_tables()
    if args.persist:
        import_tables(svc.storage, args.persist)
    load_demo_data(svc)
    # The stand-in's account owns the demo number; `flask twilio-setup` points it here, as
    # an operator does for a deployment.
    standin.standin.own_number(DEMO_NUMBER)
    from callback.work.twilio_setup import set_up_numbers

    for result in set_up_numbers(svc.storage, svc.telephony, svc.config):
        for line in result.lines():
            print(f"twilio-setup: {line}", flush=True)
    # As the set-up does for a deployment: every queue sized in (the stand-in of) Twilio.
    from callback.work.queues import size_every_queue

    size_every_queue(svc)
    with open(args.session, "w") as f:
        json.dump(session, f)
    os.chmod(args.session, 0o600)

    stop = threading.Event()
    threading.Thread(target=sweep_forever, args=(svc, stop), daemon=True).start()
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(banner(session, password, endpoint, standin.url, args.speed), flush=True)

    def shutdown(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if args.persist:
            export_tables(svc.storage, args.persist)
        standin.stop()
        if dynamo:
            dynamo.stop()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
