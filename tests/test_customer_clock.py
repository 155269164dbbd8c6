"""The customer's own clock: which zones a number's window holds in, and when it is open,
across zones and daylight-saving changes (pure rules, moments passed in)."""
from collections import defaultdict
from datetime import datetime, time, timezone

import phonenumbers
import pytest
from phonenumbers import tzdata
from phonenumbers.phonenumberutil import region_code_for_number

from callback.domain.customer_clock import (
    MAX_ZONES,
    REGION_ZONES,
    CustomerClock,
    check_window,
    customer_clock,
    parse_clock_time,
    spoken_clock,
    waiting_reason,
    zones_for_number,
)
from callback.domain.dialing import NANP_REGION_NAMES
from callback.domain.hours_input import parse_zone


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("number, fallback, zones", [
    ("+12125551234", "America/New_York", ("America/New_York",)),
    ("+14155551234", "America/New_York", ("America/Los_Angeles",)),
    ("+19285551234", "America/New_York", ("America/Phoenix",)),
    ("+18085551234", "America/New_York", ("Pacific/Honolulu",)),
    # A few zones: the window must hold in each.
    ("+19075551234", "America/New_York", ("America/Adak", "America/Anchorage")),
    ("+16055551234", "America/New_York", ("America/Denver", "America/North_Dakota/Center")),
    ("+16715551234", "America/New_York", ("Pacific/Guam",)),
    ("+17875551234", "America/New_York", ("America/Puerto_Rico",)),
    ("+16135551234", "America/New_York", ("America/Toronto",)),
    # Toll-free and 5XX numbers come back with all 42 zones of the plan: the US has many,
    # so the IVR's zone.
    ("+18005551234", "America/Chicago", ("America/Chicago",)),
    ("+18885551234", "America/New_York", ("America/New_York",)),
    ("+15005551234", "America/Denver", ("America/Denver",)),
    # A Jamaican mobile range is all 42 as well; Jamaica keeps one clock.
    ("+18765551234", "America/New_York", ("America/Jamaica",)),
    # Unknown to the plan (Etc/Unknown) or not a number at all.
    ("+16845551234", "America/New_York", ("Pacific/Pago_Pago",)),
    ("not a number", "America/Chicago", ("America/Chicago",)),
])
def test_the_zones_of_a_number(number, fallback, zones):
    assert zones_for_number(number, fallback) == zones


def test_toll_free_numbers_span_the_whole_plan_in_the_data():
    """Why the fallback exists: 'hold in each' of 42 zones, Guam to Pago Pago, is no window."""
    from phonenumbers import timezone as number_zones

    zones = number_zones.time_zones_for_number(phonenumbers.parse("+18005551234"))
    assert len(zones) == 42 and {"Pacific/Guam", "Pacific/Pago_Pago"} <= set(zones)
    assert len(zones) > MAX_ZONES


def _derived_region_zones():
    """Every +1 region's zones, from the package's time-zone data, prefix by prefix."""
    zones = defaultdict(set)
    for prefix, names in tzdata.TIMEZONE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 4:
            digits = (prefix[1:] + "2345678901")[:10]
            number = phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
            region = region_code_for_number(number)
            zones[region].update(names)
    return zones


@pytest.mark.parametrize("region", sorted(NANP_REGION_NAMES))
def test_every_region_of_the_plan_against_the_packages_data(region):
    """REGION_ZONES holds exactly the +1 regions that keep a few clocks, as the pinned
    package's data says (an upgrade that changes this fails here)."""
    derived = _derived_region_zones()[region]
    if len(derived) <= MAX_ZONES:
        assert set(REGION_ZONES[region]) == derived
    else:
        assert region not in REGION_ZONES and region in ("US", "CA")


DEFAULT = (time(8), time(20))


@pytest.mark.parametrize("number, moment, is_open", [
    # New York, winter (EST, UTC-5): 08:00-20:00 is 13:00-01:00 UTC.
    ("+12125551234", "2027-01-04 12:59", False),
    ("+12125551234", "2027-01-04 13:00", True),
    ("+12125551234", "2027-01-05 00:59", True),
    ("+12125551234", "2027-01-05 01:00", False),
    # New York, summer (EDT, UTC-4).
    ("+12125551234", "2027-07-05 11:59", False),
    ("+12125551234", "2027-07-05 12:00", True),
    ("+12125551234", "2027-07-06 00:00", False),
    # The day clocks spring forward (2027-03-14): 08:00 is already EDT.
    ("+12125551234", "2027-03-14 11:59", False),
    ("+12125551234", "2027-03-14 12:00", True),
    # The day they fall back (2027-11-07): 08:00 is EST again.
    ("+12125551234", "2027-11-07 12:30", False),
    ("+12125551234", "2027-11-07 13:00", True),
    # A Pacific number while the center's clock says 10:00 in New York: 07:00 there.
    ("+14155551234", "2027-01-04 15:00", False),
    ("+14155551234", "2027-01-04 16:00", True),
    ("+14155551234", "2027-07-05 15:00", True),
    # Arizona keeps MST all year.
    ("+19285551234", "2027-07-05 14:59", False),
    ("+19285551234", "2027-07-05 15:00", True),
    ("+19285551234", "2027-01-04 15:00", True),
    # Hawaii (UTC-10) and Guam (UTC+10).
    ("+18085551234", "2027-01-04 17:59", False),
    ("+18085551234", "2027-01-04 18:00", True),
    ("+16715551234", "2027-01-04 21:59", False),
    ("+16715551234", "2027-01-04 22:00", True),
    ("+16715551234", "2027-01-05 09:59", True),
    ("+16715551234", "2027-01-05 10:00", False),
    # Alaska's 907 is Adak (UTC-10) and Anchorage (UTC-9): open only when both are.
    ("+19075551234", "2027-01-04 17:30", False),
    ("+19075551234", "2027-01-04 18:00", True),
    ("+19075551234", "2027-01-05 04:59", True),
    ("+19075551234", "2027-01-05 05:00", False),
])
def test_the_window_across_zones_and_daylight_saving(number, moment, is_open):
    assert customer_clock(number).is_open(utc(moment)) is is_open


@pytest.mark.parametrize("number, time_zone, moment, opening", [
    ("+12125551234", "America/New_York", "2027-01-04 12:12", "2027-01-04 13:00"),
    ("+12125551234", "America/New_York", "2027-01-05 01:30", "2027-01-05 13:00"),
    ("+12125551234", "America/New_York", "2027-01-04 15:00", "2027-01-04 15:00"),
    # Across the spring change: 01:00 EST on the Sunday, the window opens at 08:00 EDT.
    ("+12125551234", "America/New_York", "2027-03-14 06:00", "2027-03-14 12:00"),
    # Across the autumn change: 01:00 EDT, it opens at 08:00 EST.
    ("+12125551234", "America/New_York", "2027-11-07 05:00", "2027-11-07 13:00"),
    ("+14155551234", "America/New_York", "2027-01-04 15:00", "2027-01-04 16:00"),
    ("+19075551234", "America/New_York", "2027-01-04 17:00", "2027-01-04 18:00"),
    ("+18005551234", "America/Chicago", "2027-01-04 13:30", "2027-01-04 14:00"),
    ("+16715551234", "America/New_York", "2027-01-05 10:00", "2027-01-05 22:00"),
])
def test_the_next_opening(number, time_zone, moment, opening):
    assert customer_clock(number, time_zone=time_zone).next_opening(utc(moment)) == utc(opening)


def test_a_window_the_zones_never_share_never_opens():
    clock = CustomerClock(("Pacific/Guam", "Pacific/Honolulu"), time(8), time(10))
    assert clock.next_opening(utc("2027-01-04 12:00")) is None


def test_a_narrower_window_of_the_ivrs_own():
    clock = customer_clock("+12125551234", start="09:00", end="20:00")
    assert not clock.is_open(utc("2027-01-04 13:30"))
    assert clock.next_opening(utc("2027-01-04 13:30")) == utc("2027-01-04 14:00")


def test_why_a_due_callback_waits_in_the_customers_time():
    clock = customer_clock("+14155551234")
    assert waiting_reason(clock, utc("2027-01-04 15:12")) == "outside the customer's hours (their time 07:12)"
    assert waiting_reason(clock, utc("2027-01-04 16:00")) is None
    # Of two zones, the one whose window is closed.
    alaska = customer_clock("+19075551234")
    assert waiting_reason(alaska, utc("2027-01-04 17:30")) == (
        "outside the customer's hours (their time 07:30)")


@pytest.mark.parametrize("value, words", [
    (time(8), "8 a.m."), (time(20), "8 p.m."), (time(12), "noon"), (time(0), "12 a.m."),
    (time(20, 30), "8:30 p.m."), (time(9, 5), "9:05 a.m."),
])
def test_spoken_clock(value, words):
    assert spoken_clock(value) == words


@pytest.mark.parametrize("value", ["8:00", "24:00", "08:60", "0800", "", None, 8, "08:00 am"])
def test_clock_times_refused(value):
    with pytest.raises(ValueError):
        parse_clock_time(value)


@pytest.mark.parametrize("value", ["Mars/Olympus", "", None, "Etc/Unknown", "/etc/localtime", "../x"])
def test_time_zones_refused(value):
    with pytest.raises(ValueError):
        parse_zone(value)


def test_windows_too_short_to_share_between_neighbouring_zones():
    assert check_window("08:00", "20:00") is None
    assert check_window("09:00", "11:00") is None
    assert "at least 2 hours" in check_window("09:00", "10:59")
    assert "at least 2 hours" in check_window("20:00", "08:00")
