"""Validation of what admins type (forms and API alike): plain Python, no Flask or storage."""
import re

from callback.domain.dialing import PREMIUM, why_not_agent_phone
from callback.domain.numbers import for_people, is_agent_address, is_e164
from callback.domain.records import TWILIO_MAX_QUEUE_SIZE, Queue
from callback.domain.settings import parse_bool, parse_int

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _\-]{0,63}")
AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}")
MAX_GREETING = 500
# A phone is also the key of its guard item, and DynamoDB keys stop at 1,024 bytes.
MAX_PHONE = 256


def check_name(value, what="name"):
    """A queue or IVR name: letters, digits, spaces, '-' and '_', up to 64 characters."""
    text = value.strip() if isinstance(value, str) else ""
    if not NAME.fullmatch(text):
        raise ValueError(f"{what} must be 1-64 letters, digits, spaces, '-' or '_'")
    return text


def check_queue(raw, ivr_name, taken_names, *, json=False):
    """One queue definition; `taken_names` are queue names other IVRs already use.

    `json`: the values came as JSON, so numbers and booleans must be JSON's own.
    """
    errors = {}
    try:
        name = check_name(raw.get("name"), "queue name")
    except ValueError as exc:
        errors["name"] = str(exc)
        name = None
    try:
        priority = parse_int(raw.get("priority", 0), -1000, 1000, json=json)
    except ValueError as exc:
        errors["priority"] = str(exc)
        priority = None
    try:
        callback = parse_bool(raw.get("callback_enabled", True), json=json)
    except ValueError as exc:
        errors["callback_enabled"] = str(exc)
        callback = None
    max_size = raw.get("max_size")
    try:
        # Blank (or absent): Twilio's own maximum, so the queue is never the limit by accident.
        blank = max_size is None or (not json and isinstance(max_size, str) and not max_size.strip())
        max_size = TWILIO_MAX_QUEUE_SIZE if blank else parse_int(max_size, 1, TWILIO_MAX_QUEUE_SIZE,
                                                                  json=json)
    except ValueError as exc:
        errors["max_size"] = str(exc)
    if name and name in taken_names:
        errors["name"] = f"queue {name} already belongs to another IVR"
    if errors:
        return None, errors
    return Queue(name, ivr_name, priority, callback, max_size), {}


def check_ivr(raw, *, other_ivrs, creating):
    """Name, numbers, greeting and queues of an IVR; returns (fields dict, errors)."""
    errors, fields = {}, {}
    try:
        fields["name"] = check_name(raw.get("name"), "IVR name")
    except ValueError as exc:
        errors["name"] = str(exc)
        fields["name"] = ""
    if creating and fields["name"] in {i.name for i in other_ivrs}:
        errors["name"] = "an IVR with this name exists"
    numbers = raw.get("numbers", [])
    if isinstance(numbers, str):
        numbers = [n.strip() for n in numbers.replace(",", "\n").splitlines() if n.strip()]
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        errors["numbers"] = "numbers must be a list of E.164 numbers"
        numbers = []
    bad = [n for n in numbers if not is_e164(n)]
    taken = {n for i in other_ivrs for n in i.numbers}
    if bad:
        errors["numbers"] = "not in E.164 form (like +14155550100): " + ", ".join(bad[:5])
    elif not numbers:
        errors["numbers"] = "at least one Twilio number is needed"
    elif taken & set(numbers):
        errors["numbers"] = "already used by another IVR: " + ", ".join(sorted(taken & set(numbers)))
    elif len(set(numbers)) != len(numbers):
        errors["numbers"] = "a number is listed twice"
    fields["numbers"] = tuple(numbers)
    greeting = raw.get("greeting", "")
    if not isinstance(greeting, str) or len(greeting) > MAX_GREETING:
        errors["greeting"] = f"greeting must be text of at most {MAX_GREETING} characters"
        greeting = ""
    fields["greeting"] = greeting.strip()
    other_queue_names = {q.name for i in other_ivrs for q in i.queues}
    queues, seen = [], set()
    raw_queues = raw.get("queues", [])
    if not isinstance(raw_queues, list):
        raw_queues = []
        errors["queues"] = "queues must be a list"
    for index, raw_queue in enumerate(raw_queues):
        if not isinstance(raw_queue, dict):
            errors[f"queues.{index}"] = "must be an object"
            continue
        queue, queue_errors = check_queue(raw_queue, fields["name"], other_queue_names)
        for key, message in queue_errors.items():
            errors[f"queues.{index}.{key}"] = message
        if queue and queue.name in seen:
            errors[f"queues.{index}.name"] = "a queue is listed twice"
        elif queue:
            seen.add(queue.name)
            queues.append(queue)
    if not raw_queues and "queues" not in errors:
        errors["queues"] = "at least one queue is needed"
    fields["queues"] = tuple(queues)
    return fields, errors


def check_agent(raw, *, known_queues, creating):
    """An agent's id, name, phone and queues; returns (fields dict, errors)."""
    errors, fields = {}, {}
    agent_id = raw.get("id", "")
    if creating:
        if not isinstance(agent_id, str) or not AGENT_ID.fullmatch(agent_id.strip()):
            errors["id"] = "id must be 1-64 lowercase letters, digits, '-' or '_'"
        fields["id"] = agent_id.strip() if isinstance(agent_id, str) else ""
    name = raw.get("name", "")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors["name"] = "name is required (at most 100 characters)"
    fields["name"] = name.strip() if isinstance(name, str) else ""
    phone = raw.get("phone", "")
    phone = phone.strip() if isinstance(phone, str) else ""
    if len(phone) > MAX_PHONE or not is_agent_address(phone):
        errors["phone"] = "phone must be E.164 (+14155550100), sip:user@host or client:name"
    elif is_e164(phone) and why_not_agent_phone(phone):
        errors["phone"] = ("that number charges the caller (premium rate): it is never dialed"
                           if why_not_agent_phone(phone) == PREMIUM else
                           "that number does not exist in its country's numbering plan")
    fields["phone"] = phone
    queues = raw.get("queues", [])
    if isinstance(queues, str):
        queues = [queues]
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        errors["queues"] = "queues must be a list of queue names"
        queues = []
    unknown = [q for q in queues if q not in known_queues]
    if unknown:
        errors["queues"] = "no such queue: " + ", ".join(unknown[:5])
    fields["queues"] = tuple(dict.fromkeys(queues))
    return fields, errors


def phone_taken(phone, agent_name, agent_id=None):
    """What an admin reads when the phone they typed is already another agent's."""
    who = f"{agent_name} ({agent_id})" if agent_id else agent_name
    return f"{for_people(phone)} is already the phone of agent {who}"
