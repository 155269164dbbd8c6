"""A phone simulator: plays Twilio against the app that `make run` started.

It sends signed webhooks exactly as Twilio would, interprets the TwiML it gets back,
and answers (or not) the calls the app places through the local Twilio stand-in, so the
whole callback journey can be tried from a terminal, or scripted for tests.

    python -m callback.simulator                      # you are the caller; keys from the keyboard
    python -m callback.simulator --keys 1,wait,1,2125551234,1 --agent alice --speed 30
"""
import argparse
import json
import os
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import requests
from twilio.request_validator import RequestValidator

from .local import SESSION_FILE

WAIT = "wait"
MUSIC_SECONDS = 15  # how much queue time one hold-music loop stands for
ACCOUNT_SID = "AC" + "0" * 32


class Out:
    """Prints what each party hears, prefixed by who they are."""

    lock = threading.Lock()

    @classmethod
    def say(cls, who, text):
        """One line of what someone hears or does."""
        with cls.lock:
            print(f"[{who}] {text}", flush=True)


class Keys:
    """Where key presses come from: a script, or the person at the keyboard."""

    def __init__(self, scripted=None):
        self.scripted = list(scripted) if scripted is not None else None

    def next(self, prompt):
        """The next entry: digits, or '' for pressing nothing."""
        if self.scripted is not None:
            if not self.scripted:
                return ""
            entry = self.scripted.pop(0).strip()
            shown = "(nothing)" if entry in ("", WAIT, "-") else entry
            Out.say("caller", f"presses {shown}")
            return "" if entry in (WAIT, "-") else entry
        try:
            return input(f"{prompt} (keys, Enter for nothing): ").strip()
        except EOFError:
            return ""


class Twilio:
    """Signs and sends webhooks to the app, and reads the stand-in's calls."""

    def __init__(self, session, speed):
        self.app_url = session["app_url"]
        self.twilio_url = session["twilio_url"]
        self.validator = RequestValidator(session["auth_token"])
        self.api_token = session["api_token"]
        self.speed = speed
        self.http = requests.Session()

    def sleep(self, seconds):
        """Wait `seconds` of simulated time."""
        time.sleep(max(seconds / self.speed, 0.01))

    def post(self, url, params):
        """A signed POST as Twilio sends it; returns the parsed TwiML."""
        url = urljoin(self.app_url + "/", url)
        params = {k: str(v) for k, v in params.items() if v is not None}
        signature = self.validator.compute_signature(url, params)
        response = self.http.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=15)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        return ET.fromstring(response.content)

    def placed_calls(self):
        """Calls the app has asked Twilio to place (or has redirected)."""
        return self.http.get(self.twilio_url + "/_standin/calls", timeout=5).json()

    def end_call(self, sid, status="completed"):
        """Tell the stand-in a call is over."""
        self.http.post(f"{self.twilio_url}/_standin/calls/{sid}/status", data={"status": status}, timeout=5)

    def api(self, method, path, **kwargs):
        """Call the app's JSON API with the local token."""
        headers = {"Authorization": f"Bearer {self.api_token}"}
        return self.http.request(method, self.app_url + path, headers=headers, timeout=10, **kwargs)


class Hangup(Exception):
    """The call is over."""


class CallerPhone:
    """The person calling the IVR: runs the TwiML of their call."""

    def __init__(self, twilio, keys, from_, to, answerer, patience=1800):
        self.twilio, self.keys, self.answerer = twilio, keys, answerer
        self.patience = patience
        self.sid = "CA" + uuid.uuid4().hex
        self.base = {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": to,
                     "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        self.queue_time = 0
        self.enqueue_action = None
        self.connected = None

    def call(self):
        """Dial in and follow the call to its end."""
        Out.say("caller", f"calls {self.base['To']} from {self.base['From']}")
        try:
            self.run(self.twilio.post("/voice/incoming", self.base))
        except Hangup:
            pass
        Out.say("caller", "hangs up" if not self.connected else "call over")

    def run(self, root, waiting=False):
        """Interpret one TwiML document; returns when it runs out."""
        for verb in list(root):
            tag = verb.tag
            if tag == "Say":
                Out.say("caller hears", verb.text or "")
            elif tag == "Play":
                Out.say("caller hears", "♪ hold music")
                self.twilio.sleep(MUSIC_SECONDS)
                if waiting:
                    self.queue_time += MUSIC_SECONDS
                    self._check_dequeued()
            elif tag == "Pause":
                self.twilio.sleep(int(verb.get("length", 1)))
            elif tag == "Gather":
                if self._gather(verb, waiting):
                    return
            elif tag == "Redirect":
                self.run(self.twilio.post(verb.text, self.base), waiting)
                return
            elif tag == "Enqueue":
                self._enqueue(verb)
                return
            elif tag == "Leave":
                if not waiting:
                    continue
                Out.say("caller", "leaves the queue")
                params = {**self.base, "QueueResult": "leave", "QueueTime": self.queue_time}
                self.run(self.twilio.post(self.enqueue_action, params))
                raise Hangup()
            elif tag == "Hangup":
                raise Hangup()
            elif tag == "Dial":
                self._dial(verb)
                return

    def _gather(self, verb, waiting):
        for child in verb:
            if child.tag == "Say":
                Out.say("caller hears", child.text or "")
            elif child.tag == "Play":
                Out.say("caller hears", "♪ hold music")
        digits = self.keys.next("Your keys")
        digits = digits[: int(verb.get("numDigits", 99))] if verb.get("finishOnKey") != "" else digits
        if not digits and verb.get("actionOnEmptyResult") != "true":
            if waiting:
                self.twilio.sleep(MUSIC_SECONDS)
                self.queue_time += MUSIC_SECONDS
                self._check_dequeued()
            return False
        self.run(self.twilio.post(verb.get("action"), {**self.base, "Digits": digits}), waiting)
        return True

    def _enqueue(self, verb):
        self.enqueue_action = verb.get("action")
        wait_url = verb.get("waitUrl")
        Out.say("caller", f"waits in queue {verb.text}")
        while True:
            if self.queue_time >= self.patience:
                Out.say("caller", f"gives up after {self.queue_time} s on hold")
                self.twilio.post(self.enqueue_action, {**self.base, "QueueResult": "hangup",
                                                       "QueueTime": self.queue_time})
                raise Hangup()
            params = {**self.base, "QueueTime": self.queue_time, "QueuePosition": 1,
                      "QueueSid": "QU" + "0" * 32, "CurrentQueueSize": 1}
            self.run(self.twilio.post(wait_url, params), waiting=True)
            self._check_dequeued()

    def _check_dequeued(self):
        """The app moved this call out of the queue through the REST API?"""
        for call in self.twilio.placed_calls():
            if call["sid"] == self.sid and call["redirects"]:
                url = call["redirects"][-1]
                Out.say("caller", "is taken out of the queue")
                self.twilio.post(self.enqueue_action, {**self.base, "QueueResult": "redirected",
                                                       "QueueTime": self.queue_time})
                self.run(self.twilio.post(url, self.base))
                raise Hangup()

    def _dial(self, verb):
        conference = verb.find("Conference")
        if conference is not None:
            self.connected = conference.text
            Out.say("caller", f"talks with the agent (conference {conference.text})")
            members = self.answerer.join(conference.text, {"sid": self.sid, "from_": self.base["From"],
                                                           "to": self.base["To"]}, "caller")
            members["ended"].wait(timeout=300 / self.twilio.speed + 30)
        raise Hangup()


class PlacedCallAnswerer:
    """Plays the phones the app rings: agents and customers being called back."""

    def __init__(self, twilio, agent_policy, customer_policy, talk_seconds=60, interactive=False):
        self.twilio = twilio
        self.agent_policy, self.customer_policy = agent_policy, customer_policy
        self.talk_seconds = talk_seconds
        self.interactive = interactive
        self.seen = set()
        self.stop = threading.Event()
        self.conferences = {}
        self.lock = threading.Lock()
        self.log = []
        self.names = {}

    def start(self):
        """Watch for calls in a background thread (agents' names looked up first)."""
        try:
            agents = self.twilio.api("GET", "/api/agents").json()["agents"]
            self.names = {a["phone"]: a["name"] for a in agents}
        except (requests.RequestException, KeyError, ValueError):
            self.names = {}
        # Calls from earlier simulator runs are history, not phones ringing now.
        self.seen.update(call["sid"] for call in self.twilio.placed_calls())
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _watch(self):
        while not self.stop.is_set():
            try:
                for call in self.twilio.placed_calls():
                    if call["url"] and call["sid"] not in self.seen:
                        self.seen.add(call["sid"])
                        threading.Thread(target=self._handle, args=(call,), daemon=True).start()
            except requests.RequestException:
                pass
            self.stop.wait(0.2)

    def _who(self, call):
        if call.get("machine_detection"):
            return "customer"
        return f"agent {self.names.get(call['to'], call['to'])}"

    def _decide(self, who, policy):
        """The next behaviour from the list (the last one repeats), or the person's choice."""
        if self.interactive:
            answer = input(f"☎ {who}'s phone rings. Answer? [Y/n/busy] ").strip().lower()
            return {"": "answer", "y": "answer", "n": "no-answer", "busy": "busy"}.get(answer, "answer")
        with self.lock:
            return policy.pop(0) if len(policy) > 1 else policy[0]

    def _params(self, call, status, **extra):
        return {"CallSid": call["sid"], "AccountSid": ACCOUNT_SID, "From": call["from_"],
                "To": call["to"], "CallStatus": status, "Direction": "outbound-api",
                "ApiVersion": "2010-04-01", **extra}

    def _handle(self, call):
        who = self._who(call)
        is_customer = who == "customer"
        Out.say(who, f"phone rings ({call['to']})")
        decision = self._decide(who, self.customer_policy if is_customer else self.agent_policy)
        self.log.append((who, decision))
        if decision in ("no-answer", "busy", "failed"):
            self.twilio.sleep((call.get("timeout") or 20) if decision == "no-answer" else 2)
            Out.say(who, f"does not answer ({decision})")
            self.twilio.end_call(call["sid"], decision)
            self.twilio.post(call["status_callback"], self._params(call, decision))
            return
        answered_by = None
        if is_customer:
            answered_by = "machine_end_beep" if decision == "machine" else "human"
        Out.say(who, "answers" if answered_by != "machine_end_beep" else "voicemail answers")
        root = self.twilio.post(call["url"], self._params(call, "in-progress", AnsweredBy=answered_by))
        self._follow(call, who, root)

    def _follow(self, call, who, root):
        conference = None
        for verb in root:
            if verb.tag == "Say":
                Out.say(f"{who} hears", verb.text or "")
            elif verb.tag == "Dial" and verb.find("Conference") is not None:
                conference = verb.find("Conference")
        if conference is None:
            self._hang_up(call, who)
            return
        name = conference.text
        self.join(name, call, who, conference.get("statusCallback"))
        Out.say(who, f"joins conference {name}")
        # Wait to be redirected (a notice), or for the other party, then talk and hang up.
        deadline = time.time() + (self.talk_seconds + 120) / self.twilio.speed
        while time.time() < deadline and not self.stop.is_set():
            redirected = self._redirect_of(call["sid"])
            if redirected:
                self._follow_redirect(call, who, redirected)
                return
            with self.lock:
                together = len(self.conferences[name]["calls"]) >= 2
            if together and who.startswith("agent"):
                self.twilio.sleep(self.talk_seconds)
                self._end_conference(name)
                return
            if together:
                return
            time.sleep(0.2)

    def join(self, name, call, who, status_callback=None):
        """Someone joins a conference; returns its record (with an `ended` event)."""
        with self.lock:
            members = self.conferences.setdefault(
                name, {"calls": [], "callback": None, "ended": threading.Event()})
            members["calls"].append((call, who))
            if status_callback:
                members["callback"] = status_callback
            return members

    def _redirect_of(self, sid):
        for placed in self.twilio.placed_calls():
            if placed["sid"] == sid and placed["redirects"]:
                return placed["redirects"][-1]
        return None

    def _follow_redirect(self, call, who, url):
        root = self.twilio.post(url, self._params(call, "in-progress"))
        for verb in root:
            if verb.tag == "Say":
                Out.say(f"{who} hears", verb.text or "")
        self._hang_up(call, who)

    def _end_conference(self, name):
        with self.lock:
            members = self.conferences[name]
        Out.say("conference", f"{name} ends: the agent hangs up")
        if members["callback"]:
            self.twilio.post(members["callback"], {"StatusCallbackEvent": "conference-end",
                                                   "FriendlyName": name, "ConferenceSid": "CF" + "0" * 32,
                                                   "AccountSid": ACCOUNT_SID})
        for call, who in members["calls"]:
            self._hang_up(call, who)
        members["ended"].set()

    def _hang_up(self, call, who):
        if who == "caller":
            return
        self.twilio.end_call(call["sid"])
        if call.get("status_callback"):
            self.twilio.post(call["status_callback"], self._params(call, "completed"))
        Out.say(who, "hangs up")


def set_available(twilio, agent_id):
    """What an agent desktop does when its agent is ready."""
    response = twilio.api("PUT", f"/api/agents/{agent_id}/status", json={"status": "available"})
    detail = "becomes available" if response.ok else f"cannot become available: {response.json()['error']}"
    Out.say("agent desktop", f"{agent_id} {detail}")


def load_session(path):
    """The local run's URLs and tokens, written by `make run`."""
    if not os.path.exists(path):
        sys.exit(f"No local run found ({path}). Start one first with: make run")
    with open(path) as f:
        return json.load(f)


def parse_script(path):
    """A script file: one key entry per line; 'agent: …' and 'customer: …' lines set behaviour."""
    keys, options = [], {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                name, value = (part.strip() for part in line.split(":", 1))
                options[name] = [v.strip() for v in value.split(",")]
            elif line:
                keys.append(line)
    return keys, options


def main(argv=None):
    """Place one call and play every phone until the callback journey ends."""
    parser = argparse.ArgumentParser(description="Play Twilio against the locally running app.")
    parser.add_argument("--session", default=SESSION_FILE)
    parser.add_argument("--from", dest="from_", default="+12125550147", help="the caller's number")
    parser.add_argument("--to", default=None, help="the IVR number dialled")
    parser.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    parser.add_argument("--keys", help="comma-separated key entries for each Gather ('wait' = none)")
    parser.add_argument("--script", help="a file of key entries and agent:/customer: lines")
    parser.add_argument("--agent", action="append", default=[],
                        help="agent id to set available once the caller is done (repeatable)")
    parser.add_argument("--ready", action="append", default=[],
                        help="agent id to set available before calling (repeatable)")
    parser.add_argument("--agent-answers", default="answer",
                        help="agent behaviour(s): answer, no-answer, busy (comma-separated, in turn)")
    parser.add_argument("--customer-answers", default="answer",
                        help="customer behaviour(s): answer, no-answer, busy, machine (in turn)")
    parser.add_argument("--patience", type=float, default=1800,
                        help="simulated seconds the caller holds before giving up")
    parser.add_argument("--watch", type=float, default=600, help="seconds of simulated time to follow the callback")
    args = parser.parse_args(argv)

    session = load_session(args.session)
    speed = args.speed or session.get("speed", 1)
    twilio = Twilio(session, speed)
    if args.speed:
        twilio.api("POST", "/_local/clock", json={"speed": args.speed})
    keys, options = (parse_script(args.script) if args.script else
                     ([k for k in args.keys.split(",")] if args.keys is not None else None, {}))
    interactive = keys is None and not args.script and sys.stdin.isatty()
    agents = options.get("agent") or args.agent
    answerer = PlacedCallAnswerer(
        twilio, options.get("agent-answers") or args.agent_answers.split(","),
        options.get("customer-answers") or args.customer_answers.split(","),
        interactive=interactive).start()

    for agent_id in args.ready:
        set_available(twilio, agent_id)
    caller = CallerPhone(twilio, Keys(keys if not interactive else None),
                         args.from_, args.to or session["ivr_number"], answerer, args.patience)
    caller.call()

    callback = twilio.api("GET", f"/api/callbacks/{caller.sid}")
    if callback.status_code != 200:
        return 0
    for agent_id in agents:
        set_available(twilio, agent_id)
    deadline = time.time() + args.watch / speed
    status = callback.json()["callback"]["status"]
    while time.time() < deadline:
        status = twilio.api("GET", f"/api/callbacks/{caller.sid}").json()["callback"]["status"]
        if status in ("completed", "expired", "canceled"):
            break
        time.sleep(0.3)
    Out.say("simulator", f"callback {caller.sid}: {status}")
    answerer.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
