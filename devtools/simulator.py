"""A phone simulator: plays Twilio against the app that `make run` started.

It finds the app through the session file `make run` writes (.local-data/session.json:
its URLs and tokens), places one call to the IVR as the caller, and plays every phone the
app rings — agents and the customer being called back — with the Twilio model of
`devtools.twilio_model`: signed webhooks, TwiML interpreted in a loop, conferences and
their events, and, when asked, a network that delays, duplicates or loses status
callbacks, REST calls that time out after placing the call, and numbers Twilio refuses.

    python -m devtools.simulator                      # you are the caller; keys from the keyboard
    python -m devtools.simulator --keys 1,wait,1,2125551234,1 --agent alice --speed 30
    python -m devtools.simulator --hours 09:00-17:00 --at 16:58 --keys 1,1,2125551234,1 --agent alice
    python -m devtools.simulator --keys 1,wait,1,2125551234,1 --sms-reply C   # texts (IVRs that send them)

`--hours` gives the IVR those hours every day (they stay, like the agents' state) and `--at`
moves the app's clock forward to that time of the center's day, so a call can run across
closing time.

When the IVR texts its customers, the customer's phone shows each text the app sends, its
delivery is reported to the app (`--text-status`: delivered, undelivered:30006 …), and
`--sms-reply WORD` texts back once the confirmation came (the cancel word, STOP, CANCEL …).
"""
import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timedelta
from urllib.parse import quote

import requests

from devtools.local import SESSION_FILE
from devtools.standin import REFUSALS
from devtools.twilio_model import (
    Behaviour,
    Chaos,
    Keys,
    Network,
    Phone,
    RemoteBackend,
    Timeline,
    Webhooks,
)

NO_RUN = "no local run found — start `make run` first"
FINAL_STATUSES = ("completed", "expired", "canceled")

# --agent-answers / --customer-answers words, and what the phone then does.
AGENT_BEHAVIOURS = {
    "answer": Behaviour("human", keys="1"),
    "decline": Behaviour("human", keys="2"),
    "silent": Behaviour("human", keys="", alone_seconds=60),
    "voicemail": Behaviour("voicemail", keys="", talk_seconds=60, alone_seconds=60),
    "no-answer": Behaviour("no-answer"),
    "busy": Behaviour("busy"),
    "failed": Behaviour("failed"),
}
CUSTOMER_BEHAVIOURS = {
    "answer": Behaviour("human", keys="1"),
    "human": Behaviour("human", keys="1"),
    "machine": Behaviour("voicemail", keys="", talk_seconds=30, alone_seconds=30),
    "voicemail": Behaviour("voicemail", keys="", talk_seconds=30, alone_seconds=30),
    "no-answer": Behaviour("no-answer"),
    "busy": Behaviour("busy"),
    "failed": Behaviour("failed"),
}


class Out:
    """Prints what each party hears, prefixed by who they are."""

    lock = threading.Lock()

    @classmethod
    def say(cls, who, text):
        """One line of what someone hears or does."""
        with cls.lock:
            print(f"[{who}] {text}", flush=True)


class NoLocalRun(Exception):
    """`make run` is not running (or its session file is missing)."""


class AskingPhone(Phone):
    """A phone whose answer the person at the keyboard chooses each time it rings."""

    def next_behaviour(self):
        """Ask: answer, decline, voicemail, no or busy."""
        choice = input(f"☎ {self.name}'s phone rings. Answer? [Y/n/busy/voicemail/decline] ").strip().lower()
        words = {"": "answer", "y": "answer", "n": "no-answer", "busy": "busy", "voicemail": "voicemail",
                 "decline": "decline"}
        table = AGENT_BEHAVIOURS if self.kind == "agent" else CUSTOMER_BEHAVIOURS
        word = words.get(choice, "answer")
        if word == "decline" and self.kind != "agent":
            word = "answer"
        return table.get(word, table["answer"])


class LocalApp:
    """The app `make run` serves: its JSON API and local controls."""

    def __init__(self, session):
        self.session = session
        self.http = requests.Session()

    def api(self, method, path, **kwargs):
        """Call the app's JSON API with the local token."""
        headers = {"Authorization": f"Bearer {self.session['api_token']}"}
        try:
            return self.http.request(method, self.session["app_url"] + path, headers=headers,
                                     timeout=10, **kwargs)
        except requests.ConnectionError as exc:
            raise NoLocalRun(NO_RUN) from exc

    def agents(self):
        """The agents, by phone number."""
        try:
            return {a["phone"]: a for a in self.api("GET", "/api/agents").json()["agents"]}
        except (KeyError, ValueError):
            return {}

    def set_available(self, agent_id):
        """What an agent desktop does when its agent is ready."""
        response = self.api("PUT", f"/api/agents/{agent_id}/status", json={"status": "available"})
        detail = "becomes available" if response.ok else f"cannot become available: {response.json()['error']}"
        Out.say("agent desktop", f"{agent_id} {detail}")

    def ivr(self):
        """The IVR the session's number reaches, as the API shows it."""
        number = self.session["ivr_number"]
        ivrs = self.api("GET", "/api/ivrs").json()["ivrs"]
        return next((i for i in ivrs if number in i["numbers"]), ivrs[0])

    def set_hours(self, spec):
        """Give the IVR `spec` (09:00-17:00) as its hours every day, through the API."""
        ivr = self.ivr()
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        response = self.api("PUT", f"/api/ivrs/{quote(ivr['name'], safe='')}/hours",
                            json={"weekly": {day: spec for day in days}})
        if not response.ok:
            raise SystemExit(f"--hours {spec}: {json.dumps(response.json().get('fields'))}")
        Out.say("admin", f"{ivr['name']} is open {spec} every day ({ivr['hours']['time_zone']})")

    def turn_on_voicemail(self):
        """Let the IVR's callers leave a message (press 3 at the offer), through the API."""
        ivr = self.ivr()
        response = self.api("PUT", f"/api/ivrs/{quote(ivr['name'], safe='')}/settings",
                            json={"voicemail_enabled": True})
        if not response.ok:
            raise SystemExit(f"--voicemail: {json.dumps(response.json().get('fields'))}")
        Out.say("admin", f"{ivr['name']} takes messages: press 3 at the offer")

    def move_clock_to(self, hh_mm):
        """Move the app's clock forward to the next `hh_mm` of the IVR's day (`--at`)."""
        from callback.domain.hours import zone_info

        zone = zone_info(self.ivr()["hours"]["time_zone"])
        now = datetime.fromisoformat(self.api("GET", "/_local/clock").json()["now"]).astimezone(zone)
        try:
            hour, minute = (int(part) for part in hh_mm.split(":"))
            target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        except ValueError as exc:
            raise SystemExit(f"--at {hh_mm}: give a time of day such as 16:58") from exc
        if target <= now:
            target += timedelta(days=1)
        self.api("POST", "/_local/clock", json={"at": target.isoformat()})
        Out.say("clock", f"the app's clock jumps to {target.strftime('%a %H:%M %Z')} at the center")

    def callback_status(self, callback_id):
        """A callback's status, or None when there is no such callback."""
        response = self.api("GET", f"/api/callbacks/{callback_id}")
        if response.status_code != 200:
            return None
        return response.json()["callback"]["status"]


class CustomerTexts:
    """The customer's phone as it takes texts: those the stand-in holds for its number are
    shown, their delivery reported to the app (signed), and a reply texted back."""

    def __init__(self, session, numbers, status="delivered"):
        self.session = session
        self.numbers = set(numbers)
        self.status, _, code = status.partition(":")
        self.code = code or None
        self.seen = set()
        self.http = requests.Session()
        self.webhooks = Webhooks(session["auth_token"], session["app_url"], [session["app_url"]])

    def show(self, wait_seconds=0.0):
        """Show the texts not seen yet (waiting up to `wait_seconds` for one); how many."""
        deadline = time.time() + wait_seconds
        while True:
            held = self.http.get(self.session["twilio_url"] + "/_standin/messages", timeout=5).json()
            texts = [m for m in held if m["to"] in self.numbers and m["sid"] not in self.seen]
            if texts or time.time() >= deadline:
                break
            time.sleep(0.2)
        for text in texts:
            self.seen.add(text["sid"])
            Out.say("customer's phone", f"text: {text['body']}")
            if text.get("status_callback"):
                self.webhooks.post(text["status_callback"], {
                    "MessageSid": text["sid"], "MessageStatus": self.status, "ErrorCode": self.code,
                    "To": text["to"], "AccountSid": self.session.get("account_sid")})
                Out.say("network", f"text {self.status}" + (f" (error {self.code})" if self.code else ""))
        return len(texts)

    def reply(self, number, ivr_number, body):
        """Text `body` from the customer's phone to the IVR number, as Twilio forwards it (its
        own keyword handling first), and show the app's answer."""
        self.http.post(self.session["twilio_url"] + "/_standin/messages/inbound",
                       data={"From": number, "To": ivr_number, "Body": body}, timeout=5)
        Out.say("customer's phone", f"texts back: {body}")
        answer = self.webhooks.post("/sms/incoming", {"From": number, "To": ivr_number, "Body": body,
                                                      "MessageSid": "SM" + "0" * 32, "NumMedia": "0"})
        messages = [m.text for m in answer.root.iter("Message")] if answer.root is not None else []
        for message in messages:
            Out.say("customer's phone", f"text: {message}")
        if answer.root is None:
            Out.say("network", f"the app answered the text with HTTP {answer.status}")


def load_session(path):
    """The local run's URLs and tokens, written by `make run`; NoLocalRun when absent."""
    if not os.path.exists(path):
        raise NoLocalRun(f"{NO_RUN} (no session file {path})")
    with open(path) as f:
        return json.load(f)


def parse_script(path):
    """A script file: one key entry per line; 'agent-answers: …' and 'customer-answers: …'
    (and 'agent: …') lines set behaviour."""
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


def behaviours(words, table, what):
    """Behaviours for a list of words; SystemExit naming the word that is not known."""
    result = []
    for word in words:
        word = word.strip()
        if word.startswith("refused"):
            continue
        if word not in table:
            raise SystemExit(f"unknown {what} behaviour {word!r}: use one of {', '.join(sorted(table))}")
        result.append(table[word])
    return result


def refusal_code(words):
    """The Twilio code a 'refused' / 'refused:21215' customer behaviour asks for, or None."""
    for word in words:
        if word.strip().startswith("refused"):
            _, _, code = word.partition(":")
            code = int(code or 21217)
            if code not in REFUSALS:
                raise SystemExit(f"unknown refusal code {code}: use one of {', '.join(map(str, REFUSALS))}")
            return code
    return None


def entered_numbers(keys):
    """The callback numbers a key script types in (ten or eleven digits)."""
    numbers = []
    for entry in keys or ():
        digits = entry.strip().rstrip("#")
        if digits.isdigit() and len(digits) == 10:
            numbers.append("+1" + digits)
        elif digits.isdigit() and len(digits) == 11 and digits.startswith("1"):
            numbers.append("+" + digits)
    return numbers


def build_parser():
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulator", description="Play Twilio against the locally running app (start it with `make run`).")
    parser.add_argument("--session", default=SESSION_FILE,
                        help="the session file `make run` writes (URLs and tokens of the local run)")
    parser.add_argument("--from", dest="from_", default="+12125550147", help="the caller's number")
    parser.add_argument("--to", default=None, help="the IVR number dialled")
    parser.add_argument("--speed", type=float, default=None, help="simulated seconds per real second")
    parser.add_argument("--keys", help="comma-separated entries, one per prompt that asks for keys "
                                       "('wait' or '-' = press nothing)")
    parser.add_argument("--script", help="a file of key entries and agent-answers:/customer-answers: lines")
    parser.add_argument("--agent", action="append", default=[],
                        help="agent id to set available once the caller is done (repeatable)")
    parser.add_argument("--ready", action="append", default=[],
                        help="agent id to set available before calling (repeatable)")
    parser.add_argument("--agent-answers", default="answer",
                        help="what agents' phones do, in turn: " + ", ".join(AGENT_BEHAVIOURS))
    parser.add_argument("--customer-answers", default="answer",
                        help="what the customer's phone does, in turn: " + ", ".join(CUSTOMER_BEHAVIOURS)
                        + ", refused[:CODE] (Twilio refuses the number: " + ", ".join(map(str, REFUSALS)) + ")")
    parser.add_argument("--patience", type=float, default=1800,
                        help="simulated seconds the caller stays on the line at most")
    parser.add_argument("--watch", type=float, default=600,
                        help="simulated seconds to follow the callback after the caller hung up")
    parser.add_argument("--talk", type=float, default=60, help="simulated seconds agent and customer talk")
    parser.add_argument("--duplicate", type=float, default=0.0,
                        help="share of status callbacks and conference events delivered twice (0-1)")
    parser.add_argument("--lose", type=float, default=0.0,
                        help="share of status callbacks and conference events never delivered (0-1)")
    parser.add_argument("--late", type=float, default=0.0,
                        help="deliver each status callback up to this many simulated seconds late (reorders)")
    parser.add_argument("--rest-timeout", type=int, default=0, metavar="N",
                        help="the app's next N create-call requests time out after Twilio placed the call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chaos decisions")
    parser.add_argument("--hours", help="give the IVR these open hours every day before calling "
                                        "(09:00-17:00; several as 09:00-12:00,13:00-17:00; 24h); they stay")
    parser.add_argument("--at", help="move the app's clock forward to this time of the center's day "
                                     "(16:58) before calling: with --hours, a call across closing time")
    parser.add_argument("--voicemail", type=int, metavar="SECONDS",
                        help="turn voicemail on for the IVR, and leave a message this long when the "
                             "caller presses 3 at the offer (--keys 3); the caller's own number is "
                             "called back")
    parser.add_argument("--sms-reply", metavar="WORD",
                        help="the customer texts this back once the confirmation came (C, STOP, CANCEL …)")
    parser.add_argument("--text-status", default="delivered",
                        help="what Twilio reports of each text: delivered, undelivered:30006, "
                             "failed:30008 …")
    return parser


def main(argv=None):
    """Place one call and play every phone until the callback journey ends."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except NoLocalRun as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _run(args):
    session = load_session(args.session)
    app = LocalApp(session)
    if args.hours:
        app.set_hours(args.hours)
    if args.at:
        app.move_clock_to(args.at)
    if args.voicemail is not None:
        app.turn_on_voicemail()
    speed = args.speed or session.get("speed", 1)
    if not args.speed:
        return _place_call(args, session, app, speed)
    app.api("POST", "/_local/clock", json={"speed": args.speed})
    try:
        return _place_call(args, session, app, speed)
    finally:
        # The speed was this call's: the next `make call` (and the admin's clock) starts
        # from the run's own speed again.
        app.api("DELETE", "/_local/clock")


def _place_call(args, session, app, speed):
    """Call the IVR, play every phone, and follow the callback until it ends."""
    keys, options = (parse_script(args.script) if args.script else
                     (args.keys.split(",") if args.keys is not None else None, {}))
    interactive = keys is None and not args.script and sys.stdin.isatty()
    agent_words = options.get("agent-answers") or args.agent_answers.split(",")
    customer_words = options.get("customer-answers") or args.customer_answers.split(",")
    agent_plan = behaviours(agent_words, AGENT_BEHAVIOURS, "agent")
    customer_plan = behaviours(customer_words, CUSTOMER_BEHAVIOURS, "customer") or [CUSTOMER_BEHAVIOURS["answer"]]
    for plan in (agent_plan, customer_plan):
        for i, behaviour in enumerate(plan):
            if behaviour.is_person:
                plan[i] = Behaviour(behaviour.answer, behaviour.keys, behaviour.ring_seconds,
                                    args.talk, behaviour.alone_seconds)

    backend = RemoteBackend(session["twilio_url"])
    try:
        backend.known_calls()
    except requests.ConnectionError as exc:
        raise NoLocalRun(NO_RUN) from exc
    chaos = Chaos(duplicate=args.duplicate, lose=args.lose, max_delay=args.late)
    network = Network(backend, Webhooks(session["auth_token"], session["app_url"], [session["app_url"]]),
                      Timeline(speed), chaos=chaos, seed=args.seed, out=Out.say)
    if chaos.duplicate or chaos.lose or chaos.max_delay:
        Out.say("network", chaos.describe())
    phone_class = AskingPhone if interactive else Phone
    for number, agent in app.agents().items():
        network.add_phone(phone_class(number, "agent", list(agent_plan), name=f"agent {agent['name']}"))
    code = refusal_code(customer_words)
    for number in entered_numbers(keys):
        network.add_phone(phone_class(number, "customer", list(customer_plan), name="customer"))
        if code:
            backend.refuse(number, code)
            Out.say("network", f"Twilio refuses calls to {number} (error {code})")
    if args.voicemail is not None:  # a message is called back on the caller's own number
        network.add_phone(phone_class(args.from_, "customer", list(customer_plan), name="customer"))
    network.default_behaviour["customer"] = customer_plan[-1]
    if args.rest_timeout:
        # Longer than the app's REST timeout (5 s by default): its client gives up, the call rings.
        backend.time_out_after_placing(8, args.rest_timeout)
        Out.say("network", f"the next {args.rest_timeout} create-call request(s) time out after placing the call")
    network.start()

    for agent_id in args.ready:
        app.set_available(agent_id)
    caller_keys = Keys(keys if not interactive else None, out=Out.say)
    run = network.dial_in(args.from_, args.to or session["ivr_number"], caller_keys, args.patience,
                          message_seconds=args.voicemail)
    Out.say("caller", "call over" if run.ending == "hung-up-by-callee" else "hangs up")

    status = app.callback_status(run.call.sid)
    customer_texts = CustomerTexts(session, entered_numbers(keys), args.text_status)
    if status is not None and customer_texts.show(wait_seconds=3) and args.sms_reply:
        for number in entered_numbers(keys):
            customer_texts.reply(number, args.to or session["ivr_number"], args.sms_reply)
    if status is not None:
        for agent_id in args.agent:
            app.set_available(agent_id)
        deadline = time.time() + args.watch / speed
        while time.time() < deadline and status not in FINAL_STATUSES:
            time.sleep(0.3)
            status = app.callback_status(run.call.sid)
    # Let the last status callbacks and conference events land before reporting, also when
    # an agent took the caller from hold: stopping at once would leave the agent's call live
    # at the stand-in, and the agent busy, for good.
    settle = time.time() + max(args.late / speed, 0) + 2
    while network.busy() and time.time() < settle:
        time.sleep(0.1)
    if status is None:
        network.stop()
        return 0
    status = app.callback_status(run.call.sid)
    customer_texts.show()
    network.out = lambda who, text: None
    network.stop()
    Out.say("simulator", f"callback {run.call.sid}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
