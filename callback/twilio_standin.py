"""A local stand-in for the slice of Twilio's REST API the app uses.

It records every request, answers in Twilio's JSON shapes, and can be told to fail, so
`make run` works with no Twilio account and tests exercise the real twilio client over
real HTTP. Calls it places ring until someone (the simulator or a test) says what
happened to them.
"""
import threading
import time
import uuid
from dataclasses import dataclass, field

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

_FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}


@dataclass
class PlacedCall:
    """A call the app asked Twilio to place, as the stand-in saw it."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    timeout: int | None
    machine_detection: str | None
    status: str = "queued"
    redirects: list = field(default_factory=list)


class TwilioStandIn:
    """State and behaviour of the stand-in: calls placed, requests seen, failures queued."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.calls = {}
        self.ended = set()
        self._failures = []
        self._delays = []

    def new_sid(self):
        """A fresh CA… call SID."""
        return "CA" + uuid.uuid4().hex

    def fail_next(self, status=500, code=20500, count=1, message="Internal Server Error"):
        """Make the next `count` requests fail with this HTTP status and Twilio code."""
        with self.lock:
            self._failures.extend([(status, code, message)] * count)

    def delay_next(self, seconds, count=1):
        """Make the next `count` requests answer only after `seconds` (a slow Twilio)."""
        with self.lock:
            self._delays.extend([seconds] * count)

    def end_call(self, sid):
        """Mark a call (placed or inbound) as over: redirects then fail with 21220."""
        with self.lock:
            self.ended.add(sid)
            if sid in self.calls:
                self.calls[sid].status = "completed"

    def placed(self, to=None):
        """Calls placed so far, optionally only those to one number."""
        with self.lock:
            return [c for c in self.calls.values() if to is None or c.to == to]

    def reset(self):
        """Forget everything."""
        with self.lock:
            self.requests.clear()
            self.calls.clear()
            self.ended.clear()
            self._failures.clear()
            self._delays.clear()

    def _take_failure(self):
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    def wsgi_app(self):
        """The Flask app serving Twilio's URL layout."""
        app = Flask("twilio_standin")
        base = "/2010-04-01/Accounts/<account_sid>"

        def error(status, code, message):
            response = jsonify(code=code, message=message, status=status,
                               more_info=f"https://www.twilio.com/docs/errors/{code}")
            response.status_code = status
            return response

        @app.before_request
        def record_and_maybe_fail():
            if request.path.startswith("/_standin"):
                return None
            with self.lock:
                self.requests.append({"method": request.method, "path": request.path,
                                      "params": request.form.to_dict(flat=False)})
            if request.authorization is None:
                return error(401, 20003, "Authenticate")
            with self.lock:
                delay = self._delays.pop(0) if self._delays else 0
            if delay:
                time.sleep(delay)
            failure = self._take_failure()
            if failure:
                return error(*failure)
            return None

        def call_json(account_sid, call):
            return jsonify(sid=call.sid, account_sid=account_sid, to=call.to, _from=call.from_,
                           status=call.status, direction="outbound-api",
                           api_version="2010-04-01", uri=f"/2010-04-01/Accounts/{account_sid}"
                           f"/Calls/{call.sid}.json")

        @app.post(base + "/Calls.json")
        def create_call(account_sid):
            """POST …/Calls.json: place a call (it rings until told otherwise)."""
            form = request.form
            if not form.get("To") or not form.get("From"):
                return error(400, 21201, "No 'To' or 'From' number is specified")
            call = PlacedCall(self.new_sid(), form["To"], form["From"], form.get("Url", ""),
                              form.get("StatusCallback"), form.get("Timeout", type=int),
                              form.get("MachineDetection"))
            with self.lock:
                self.calls[call.sid] = call
            response = call_json(account_sid, call)
            response.status_code = 201
            return response

        @app.route(base + "/Calls/<call_sid>.json", methods=["GET", "POST"])
        def one_call(account_sid, call_sid):
            """GET or POST …/Calls/{Sid}.json: fetch, redirect or hang up a call."""
            with self.lock:
                call = self.calls.get(call_sid)
                ended = call_sid in self.ended or (call is not None and call.status in _FINAL)
            if request.method == "GET":
                if call is None:
                    status = "completed" if ended else "in-progress"
                    call = PlacedCall(call_sid, "", "", "", None, None, None, status)
                return call_json(account_sid, call)
            if ended:
                return error(400, 21220, "Call is not in-progress. Cannot redirect.")
            if call is None:
                call = PlacedCall(call_sid, "", "", "", None, None, None, "in-progress")
                with self.lock:
                    self.calls[call_sid] = call
            with self.lock:
                if request.form.get("Status") == "completed":
                    call.status = "completed"
                    self.ended.add(call_sid)
                if request.form.get("Url"):
                    call.redirects.append(request.form["Url"])
            return call_json(account_sid, call)

        @app.get("/_standin/calls")
        def list_calls():
            """Calls placed or redirected so far (for the simulator)."""
            return jsonify([vars(c) for c in self.placed()])

        @app.post("/_standin/calls/<call_sid>/status")
        def set_status(call_sid):
            """Say what happened to a call (for the simulator)."""
            status = request.form.get("status", "completed")
            with self.lock:
                if call_sid in self.calls:
                    self.calls[call_sid].status = status
                if status in _FINAL:
                    self.ended.add(call_sid)
            return jsonify(ok=True)

        @app.get("/_standin/requests")
        def list_requests():
            """Every REST request received."""
            with self.lock:
                return jsonify(self.requests)

        return app


class StandInServer:
    """The stand-in served over HTTP on loopback in a background thread."""

    def __init__(self, standin=None, host="127.0.0.1", port=0):
        self.standin = standin or TwilioStandIn()
        self._server = make_server(host, port, self.standin.wsgi_app(), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self):
        """Stop serving."""
        self._server.shutdown()
