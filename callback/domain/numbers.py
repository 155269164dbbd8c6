"""Phone number rules: what a caller may enter, how numbers are spoken and masked."""
import re
from dataclasses import dataclass

from callback.domain.dialing import why_not_callable

# North American Numbering Plan: area code and exchange both start with 2-9, so a
# ten-digit entry can never begin with the trunk prefix 1.
_NANP = re.compile(r"[2-9]\d{2}[2-9]\d{6}")
_E164 = re.compile(r"\+[1-9]\d{7,14}")
_AGENT_ADDRESS = re.compile(r"(sip:[^\s@]+@[^\s@]+|client:[A-Za-z0-9_.\-]{1,100})")
MAX_DIGITS_CONSIDERED = 32


@dataclass(frozen=True)
class EntryCheck:
    """The outcome of checking what a caller keyed in."""

    e164: str | None
    problem: str | None

    @property
    def ok(self):
        """True when the entry is a valid number."""
        return self.problem is None


def check_callback_entry(digits, rules=None):
    """Check a keyed-in callback number: exactly ten NANP digits, never a leading 1, and
    (with an IVR's `rules`) a number the numbering plan says exists and the IVR may call:
    never premium-rate, never a region it does not call (problem "not_callable")."""
    digits = (digits or "").strip()
    if not digits:
        return EntryCheck(None, "empty")
    if len(digits) > MAX_DIGITS_CONSIDERED:
        return EntryCheck(None, "too_long")
    if not digits.isdigit() or not digits.isascii():
        return EntryCheck(None, "not_digits")
    if digits.startswith("1") and len(digits) in (10, 11):
        return EntryCheck(None, "leading_one")
    if len(digits) < 10:
        return EntryCheck(None, "too_short")
    if len(digits) > 10:
        return EntryCheck(None, "too_long")
    if digits[0] in "01":
        return EntryCheck(None, "bad_area_code")
    if not _NANP.fullmatch(digits):
        return EntryCheck(None, "bad_exchange")
    if rules is not None and why_not_callable("+1" + digits, rules) is not None:
        return EntryCheck(None, "not_callable")
    return EntryCheck("+1" + digits, None)


def caller_id_number(number, rules=None):
    """The caller's own number when it is a ten-digit NANP number (+1 and a valid entry)
    the IVR may call, else None: withheld, international, malformed and refused caller IDs
    are never offered."""
    if not number or not number.startswith("+1") or len(number) != 12:
        return None
    check = check_callback_entry(number[2:], rules)
    return check.e164 if check.ok else None


def last_four_speakable(e164):
    """The last four digits, read one by one: '1 2 3 4'."""
    return " ".join(national_digits(e164)[-4:])


def is_e164(number):
    """True for a number in E.164 form (+ and 8 to 15 digits)."""
    return bool(number) and bool(_E164.fullmatch(number))


def is_agent_address(address):
    """True for what an agent can be rung at: E.164, a sip: URI or a client: identity."""
    return is_e164(address) or bool(address and _AGENT_ADDRESS.fullmatch(address))


def national_digits(e164):
    """The ten national digits of a +1 number (the number unchanged otherwise)."""
    if e164 and e164.startswith("+1") and len(e164) == 12:
        return e164[2:]
    return (e164 or "").lstrip("+")


def speakable(e164):
    """A number read digit by digit in groups: '5 5 5, 2 3 4, 5 6 7 8'."""
    digits = national_digits(e164)
    if len(digits) == 10:
        groups = [digits[:3], digits[3:6], digits[6:]]
    else:
        groups = [digits]
    return ", ".join(" ".join(group) for group in groups)


def mask(number):
    """A number safe for logs and lists: only its last two digits shown."""
    if not number:
        return "-"
    text = str(number)
    if text.startswith(("sip:", "client:")):
        return text.split(":", 1)[0] + ":***"
    digits = [c for c in text if c.isdigit()]
    if len(digits) <= 2:
        return "*" * len(digits)
    prefix = "+" if text.startswith("+") else ""
    return prefix + "*" * (len(digits) - 2) + "".join(digits[-2:])


def mask_for_list(number):
    """A number as a list shows it: enough to tell callbacks apart, never all of it.

    '+12125551234' → '(212) ***-1234'; other numbers keep their last four digits.
    """
    digits = national_digits(number)
    if number and number.startswith("+1") and len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) ***-{digits[6:]}"
    if not number or str(number).startswith(("sip:", "client:")) or len(digits) <= 4:
        return mask(number)
    return "+" + "*" * (len(digits) - 4) + digits[-4:]


def for_people(number):
    """A number written in full the way people read it: '+12125551234' → '(212) 555-1234'."""
    digits = national_digits(number)
    if number and number.startswith("+1") and len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return number or "—"
