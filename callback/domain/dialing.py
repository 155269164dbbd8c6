"""Which numbers deserve a call: the numbering plan's own data (Google's libphonenumber
metadata, through `phonenumbers`), and each IVR's rules on top of it.

A callback system dials what callers key in, so it is a toll-fraud tool unless it refuses
premium-rate numbers, ranges that do not exist and destinations billed as international.
In libphonenumber the +1 plan is 25 regions: the US and its territories, Canada, and the
Caribbean countries (Jamaica 876, the Dominican Republic 809/829/849, …), whose numbers
look like any ten-digit US number but are billed as international calls. "Valid" means
the range is open, not that the number is assigned; the metadata ages with the package
(the README says how to upgrade it).
"""
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

# The +1 regions, with the names an admin reads (the geocoder that knows names is left
# out of the Lambda package).
NANP_REGION_NAMES = {
    "US": "United States", "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "CA": "Canada",
    "AG": "Antigua and Barbuda", "AI": "Anguilla", "BB": "Barbados", "BM": "Bermuda",
    "BS": "Bahamas", "DM": "Dominica", "DO": "Dominican Republic", "GD": "Grenada",
    "JM": "Jamaica", "KN": "Saint Kitts and Nevis", "KY": "Cayman Islands", "LC": "Saint Lucia",
    "MS": "Montserrat", "SX": "Sint Maarten", "TC": "Turks and Caicos Islands",
    "TT": "Trinidad and Tobago", "VC": "Saint Vincent and the Grenadines",
    "VG": "British Virgin Islands",
}
US_AND_TERRITORIES = ("US", "AS", "GU", "MP", "PR", "VI")
DEFAULT_REGIONS = US_AND_TERRITORIES

# Why a number is not called (the caller hears one plain sentence for all of them).
NOT_VALID = "not-valid"          # no such range in the plan (411, 911 as area codes …)
PREMIUM = "premium-rate"         # the called number charges the caller (900, 246-976 …)
OUTSIDE_REGIONS = "outside-regions"  # a region the IVR does not call (the Caribbean by default)
TOLL_FREE = "toll-free"          # 800, 888 …: refused when the IVR says so
PERSONAL = "personal"            # 5XX personal-communication numbers: refused unless allowed
NOT_NANP = "not-nanp"            # outside the +1 plan

# Types whose calls cost the caller (none exists in the +1 plan's shared-cost table today,
# but the check is by type, not by area code, so new ranges are caught as they appear).
_CHARGED = (PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST)


@dataclass(frozen=True)
class DialRules:
    """An IVR's rules on the numbers it calls back."""

    regions: tuple = DEFAULT_REGIONS
    toll_free: bool = True
    personal: bool = False


def _parsed(e164):
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None


def region_of(e164):
    """The numbering-plan region of a number (US, CA, JM …), or None."""
    number = _parsed(e164)
    return phonenumbers.region_code_for_number(number) if number is not None else None


def why_not_callable(e164, rules=DialRules()):
    """None when a callback may dial `e164` under `rules`, else why not."""
    number = _parsed(e164)
    if number is None or number.country_code != 1:
        return NOT_NANP
    if not phonenumbers.is_valid_number(number):
        return NOT_VALID
    kind = phonenumbers.number_type(number)
    if kind in _CHARGED:
        return PREMIUM
    if kind == PhoneNumberType.TOLL_FREE:
        return None if rules.toll_free else TOLL_FREE
    if kind == PhoneNumberType.PERSONAL_NUMBER:
        return None if rules.personal else PERSONAL
    if phonenumbers.region_code_for_number(number) not in rules.regions:
        return OUTSIDE_REGIONS
    return None


def why_not_agent_phone(e164):
    """None when an agent's phone number may be dialed, else why not: any valid number of
    any country, never one that charges the caller."""
    number = _parsed(e164)
    if number is None or not phonenumbers.is_valid_number(number):
        return NOT_VALID
    if phonenumbers.number_type(number) in _CHARGED:
        return PREMIUM
    return None


def parse_regions(value):
    """A tuple of +1 region codes from a list (API) or the codes of ticked boxes (form);
    ValueError when empty or naming a region outside the +1 plan."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of region codes (US, CA …)")
    codes = {v.strip().upper() for v in value}
    unknown = sorted(codes - set(NANP_REGION_NAMES))
    if unknown:
        raise ValueError(f"not regions of the +1 plan: {', '.join(unknown)}")
    if not codes:
        raise ValueError("at least one region is needed")
    return tuple(code for code in NANP_REGION_NAMES if code in codes)
