"""Open hours: the pure rules, table-driven (each boundary, midnight, holidays, closures, the
two DST changes of New York in 2026), and the text forms admins type."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callback.domain import hours as h
from callback.domain.hours import Closure, OpenHours
from callback.domain.hours_input import (
    hours_from_record,
    hours_json,
    hours_record,
    parse_closures,
    parse_holidays,
    parse_periods,
    validate_hours,
)

NY = ZoneInfo("America/New_York")
NINE_TO_FIVE = ((9 * 60, 17 * 60),)
WEEKDAYS = (NINE_TO_FIVE,) * 5 + ((), ())
# Monday 2026-01-05 … ; 2026-03-08 (Sunday) clocks go 02:00 -> 03:00; 2026-11-01 (Sunday)
# they go 02:00 -> 01:00.
OFFICE = OpenHours(weekly=WEEKDAYS, holidays=(Closure(date(2026, 1, 19), date(2026, 1, 19), "MLK Day"),),
                   closures=(Closure(date(2026, 2, 16), date(2026, 2, 18), "Move"),))


def ny(*args):
    """A New York wall time as a UTC moment."""
    return datetime(*args, tzinfo=NY).astimezone(timezone.utc)


@pytest.mark.parametrize("moment, expected", [
    (ny(2026, 1, 5, 8, 59, 59), False),   # Monday, a second before opening
    (ny(2026, 1, 5, 9, 0), True),         # opening is open
    (ny(2026, 1, 5, 16, 59, 59), True),
    (ny(2026, 1, 5, 17, 0), False),       # closing is closed
    (ny(2026, 1, 5, 23, 59), False),
    (ny(2026, 1, 6, 0, 0), False),        # midnight
    (ny(2026, 1, 10, 12, 0), False),      # Saturday
    (ny(2026, 1, 19, 12, 0), False),      # a holiday on a Monday
    (ny(2026, 1, 20, 9, 0), True),        # the day after it
    (ny(2026, 2, 16, 9, 0), False),       # first day of a closure
    (ny(2026, 2, 18, 16, 0), False),      # its last day
    (ny(2026, 2, 19, 9, 0), True),
    (ny(2026, 3, 9, 9, 0), True),         # the Monday after clocks went forward (EDT)
    (ny(2026, 3, 9, 8, 30), False),
])
def test_open_at_each_boundary(moment, expected):
    assert h.is_open(OFFICE, moment) is expected


@pytest.mark.parametrize("moment, opening", [
    (ny(2026, 1, 5, 8, 0), ny(2026, 1, 5, 9, 0)),
    (ny(2026, 1, 5, 10, 0), ny(2026, 1, 5, 10, 0)),   # open: now
    (ny(2026, 1, 5, 17, 0), ny(2026, 1, 6, 9, 0)),
    (ny(2026, 1, 9, 17, 30), ny(2026, 1, 12, 9, 0)),  # Friday evening: Monday
    (ny(2026, 1, 16, 17, 0), ny(2026, 1, 20, 9, 0)),  # Friday before the holiday: Tuesday
    (ny(2026, 2, 13, 18, 0), ny(2026, 2, 19, 9, 0)),  # across a weekend and a closure
    (ny(2026, 3, 6, 17, 0), ny(2026, 3, 9, 9, 0)),    # across the spring DST change
])
def test_next_opening(moment, opening):
    assert h.next_opening(OFFICE, moment) == opening


def test_the_spring_change_moves_the_opening_an_hour_earlier_in_utc():
    assert h.next_opening(OFFICE, ny(2026, 3, 6, 17, 0)) == datetime(2026, 3, 9, 13, 0, tzinfo=timezone.utc)
    assert h.next_opening(OFFICE, ny(2026, 3, 6, 8, 0)) == datetime(2026, 3, 6, 14, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("moment, closing", [
    (ny(2026, 1, 5, 9, 0), ny(2026, 1, 5, 17, 0)),
    (ny(2026, 1, 5, 16, 59), ny(2026, 1, 5, 17, 0)),
    (ny(2026, 1, 5, 17, 0), None),   # closed
])
def test_closing_time_of_the_period_under_way(moment, closing):
    assert h.closing_time(OFFICE, moment) == closing


def test_a_period_past_midnight_is_one_period():
    late = OpenHours(weekly=(((20 * 60, 24 * 60),), ((0, 2 * 60),)) + ((),) * 5)
    assert h.closing_time(late, ny(2026, 1, 5, 23, 0)) == ny(2026, 1, 6, 2, 0)
    assert h.is_open(late, ny(2026, 1, 6, 0, 0)) and h.is_open(late, ny(2026, 1, 6, 1, 59))
    assert not h.is_open(late, ny(2026, 1, 6, 2, 0))
    assert h.open_between(late, ny(2026, 1, 5, 0, 0), ny(2026, 1, 7, 0, 0)) == timedelta(hours=6)


@pytest.mark.parametrize("start, end, open_time", [
    (ny(2026, 1, 5, 16, 0), ny(2026, 1, 6, 10, 0), timedelta(hours=2)),       # overnight
    (ny(2026, 1, 9, 16, 0), ny(2026, 1, 12, 10, 0), timedelta(hours=2)),      # a weekend
    (ny(2026, 1, 16, 16, 0), ny(2026, 1, 20, 10, 0), timedelta(hours=2)),     # and a holiday
    (ny(2026, 3, 6, 16, 0), ny(2026, 3, 9, 10, 0), timedelta(hours=2)),       # across spring DST
    (ny(2026, 10, 30, 16, 0), ny(2026, 11, 2, 10, 0), timedelta(hours=2)),    # across autumn DST
    (ny(2026, 1, 5, 10, 0), ny(2026, 1, 5, 9, 0), timedelta(0)),
])
def test_open_time_between_two_instants(start, end, open_time):
    assert h.open_between(OFFICE, start, end) == open_time


@pytest.mark.parametrize("start, amount, moment", [
    (ny(2026, 1, 5, 16, 50), timedelta(minutes=120), ny(2026, 1, 6, 10, 50)),   # Expiration Time
    (ny(2026, 1, 5, 16, 58), timedelta(minutes=5), ny(2026, 1, 6, 9, 3)),       # Retry Time
    (ny(2026, 1, 16, 16, 58), timedelta(minutes=5), ny(2026, 1, 20, 9, 3)),     # over a holiday
    (ny(2026, 1, 5, 20, 0), timedelta(minutes=30), ny(2026, 1, 6, 9, 30)),      # from a closed time
    (ny(2026, 3, 6, 16, 0), timedelta(hours=2), ny(2026, 3, 9, 10, 0)),         # across spring DST
])
def test_adding_open_time(start, amount, moment):
    assert h.add_open_time(OFFICE, start, amount) == moment


def test_days_of_23_and_25_hours_are_open_as_their_clocks_say():
    always = OpenHours()
    sundays = OpenHours(weekly=((),) * 6 + (h.ALL_DAY,))
    assert h.open_between(sundays, ny(2026, 3, 7, 12, 0), ny(2026, 3, 9, 12, 0)) == timedelta(hours=23)
    assert h.open_between(sundays, ny(2026, 10, 31, 12, 0), ny(2026, 11, 2, 12, 0)) == timedelta(hours=25)
    assert h.open_between(always, ny(2026, 3, 7, 12, 0), ny(2026, 3, 9, 12, 0)) == timedelta(hours=47)


def test_a_wall_time_lost_to_the_spring_change_opens_when_the_clocks_allow():
    # Sunday 2026-03-08 has no 02:30: opening there counts as 03:30 EDT (07:30 UTC).
    night = OpenHours(weekly=((),) * 6 + (((150, 300),),))
    assert h.next_opening(night, ny(2026, 3, 8, 0, 0)) == datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc)
    assert h.open_between(night, ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == timedelta(minutes=90)


def test_always_open_is_the_default_and_never_closes():
    always = OpenHours()
    assert always.always_open
    moment = ny(2026, 1, 5, 3, 0)
    assert h.is_open(always, moment) and h.next_opening(always, moment) == moment
    assert h.closing_time(always, moment) is None
    assert h.add_open_time(always, moment, timedelta(minutes=5)) == moment + timedelta(minutes=5)


def test_an_ivr_that_never_opens_has_no_opening_and_no_open_time():
    never = OpenHours(weekly=((),) * 7)
    assert not h.is_open(never, ny(2026, 1, 5, 12, 0))
    assert h.next_opening(never, ny(2026, 1, 5, 12, 0)) is None
    assert h.add_open_time(never, ny(2026, 1, 5, 12, 0), timedelta(minutes=5)) is None
    assert h.open_time_later(never, ny(2026, 1, 5, 12, 0), timedelta(minutes=5)) == ny(2026, 1, 5, 12, 5)


def test_the_centers_day_is_its_own_midnight():
    tokyo = OpenHours(zone="Asia/Tokyo")
    moment = datetime(2026, 1, 5, 16, 0, tzinfo=timezone.utc)  # 01:00 on the 6th in Tokyo
    assert h.local_date(tokyo, moment) == date(2026, 1, 6)
    assert h.day_start(tokyo, moment) == datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)
    assert h.day_start(OFFICE, moment) == datetime(2026, 1, 5, 5, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("minute, said", [(0, "midnight"), (9 * 60, "9 AM"), (12 * 60, "noon"),
                                          (17 * 60 + 30, "5:30 PM"), (13 * 60 + 5, "1:05 PM")])
def test_times_as_they_are_said(minute, said):
    assert h.spoken_clock(minute) == said


def test_the_week_and_the_next_opening_in_words():
    assert h.spoken_week(OFFICE) == "We are open Monday to Friday, 9 AM to 5 PM."
    assert h.week_lines(OFFICE) == [("Monday to Friday", "09:00-17:00"), ("Saturday and Sunday", "closed")]
    now = ny(2026, 1, 9, 17, 30)  # a Friday
    assert h.spoken_moment(OFFICE, now, ny(2026, 1, 9, 18, 0)) == "today at 6 PM"
    assert h.spoken_moment(OFFICE, now, ny(2026, 1, 10, 9, 0)) == "tomorrow at 9 AM"
    assert h.spoken_moment(OFFICE, now, ny(2026, 1, 12, 9, 0)) == "on Monday at 9 AM"
    assert h.spoken_moment(OFFICE, now, ny(2026, 1, 19, 9, 30)) == "on January 19 at 9:30 AM"


# -- what admins type --------------------------------------------------------------------

@pytest.mark.parametrize("text, periods", [
    ("09:00-17:00", NINE_TO_FIVE),
    (" 9:00 - 17:00 ", NINE_TO_FIVE),
    ("13:00-17:00, 09:00-12:00", ((540, 720), (780, 1020))),
    ("", ()), ("closed", ()), ("Closed", ()),
    ("24h", h.ALL_DAY), ("00:00-24:00", h.ALL_DAY),
    ("09:00-12:00, 12:00-17:00", ((540, 720), (720, 1020))),
])
def test_periods_as_typed(text, periods):
    assert parse_periods(text) == periods


@pytest.mark.parametrize("text", ["9-5", "17:00-09:00", "09:00-09:00", "25:00-26:00", "09:60-10:00",
                                  "24:30-24:45", "09:00-12:00, 11:00-13:00", "nine to five", "09:00",
                                  ", ".join(["01:00-01:30"] * 7)])
def test_periods_refused(text):
    with pytest.raises(ValueError):
        parse_periods(text)


def test_holidays_and_closures_from_text_and_json():
    assert parse_holidays("2026-12-25 Christmas Day\n\n2026-01-01") == (
        Closure(date(2026, 1, 1), date(2026, 1, 1), ""), Closure(date(2026, 12, 25), date(2026, 12, 25),
                                                                 "Christmas Day"))
    assert parse_holidays([{"date": "2026-12-25", "name": "Christmas"}])[0].note == "Christmas"
    assert parse_closures("2026-08-03 to 2026-08-07 Summer shutdown") == (
        Closure(date(2026, 8, 3), date(2026, 8, 7), "Summer shutdown"),)
    assert parse_closures([{"from": "2026-08-03", "to": "2026-08-07"}])[0].last == date(2026, 8, 7)
    for bad in ("2026-02-30 Leap", "12/25/2026", "2026-12-25 <script>", [{"date": "2026-12-25", "name": 5}]):
        with pytest.raises(ValueError):
            parse_holidays(bad)
    for bad in ("2026-08-07 to 2026-08-03", "2026-08-03", "2026-01-01 to 2027-06-01 long",
                [{"from": "2026-08-03", "to": "2026-08-04", "note": ["x"]}]):
        with pytest.raises(ValueError):
            parse_closures(bad)


def test_validation_saves_all_or_nothing_and_keeps_what_was_not_sent():
    hours, errors = validate_hours({"time_zone": "America/Chicago", "weekly": {"sat": "10:00-14:00"}},
                                   OFFICE, json=True)
    assert not errors and hours.zone == "America/Chicago" and hours.weekly[5] == ((600, 840),)
    assert hours.weekly[0] == NINE_TO_FIVE and hours.holidays == OFFICE.holidays
    hours, errors = validate_hours({"time_zone": "Mars/Olympus", "weekly": {"mon": "17:00-09:00", "fun": "x"},
                                    "holidays": "2026-13-01", "closed_callbacks": "yes", "extra": 1},
                                   OFFICE, json=True)
    assert hours is None
    assert set(errors) == {"time_zone", "weekly.mon", "weekly.fun", "holidays", "closed_callbacks", "extra"}


def test_storage_and_api_forms_give_back_the_same_hours():
    assert hours_from_record(**hours_record(OFFICE)) == OFFICE
    api_form = hours_json(OFFICE)
    assert api_form["weekly"]["mon"] == "09:00-17:00" and api_form["weekly"]["sat"] == ""
    assert validate_hours(api_form, OpenHours(), json=True) == (OFFICE, {})
    assert hours_from_record(None, None, None, None, None) == OpenHours()


@pytest.mark.parametrize("now, wait, when", [
    (ny(2026, 1, 5, 16, 0), timedelta(minutes=15), ny(2026, 1, 5, 16, 0)),    # made before closing
    (ny(2026, 1, 5, 16, 50), timedelta(minutes=15), ny(2026, 1, 6, 9, 0)),    # not: the next opening
    (ny(2026, 1, 5, 16, 45), None, ny(2026, 1, 5, 16, 45)),                   # unknown wait, 15 min left
    (ny(2026, 1, 5, 16, 55), None, ny(2026, 1, 6, 9, 0)),                     # unknown wait, 5 min left
    (ny(2026, 1, 9, 16, 55), timedelta(minutes=1), ny(2026, 1, 9, 16, 55)),
    (ny(2026, 1, 9, 16, 59), timedelta(minutes=1), ny(2026, 1, 12, 9, 0)),    # Friday: Monday
    (ny(2026, 1, 10, 12, 0), None, ny(2026, 1, 12, 9, 0)),                    # closed: the opening
])
def test_when_a_callback_asked_for_now_can_be_made(now, wait, when):
    assert h.callback_time(OFFICE, now, wait) == when


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
FIELDS = ["time_zone", "weekly", "holidays", "closures", "closed_callbacks", "x"]


@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5))
def test_any_json_gives_hours_or_field_errors_never_an_exception(raw):
    hours, errors = validate_hours(raw, OFFICE, json=True)
    assert (hours is None) == bool(errors)
    if hours is not None:
        assert len(hours.weekly) == 7
        h.next_opening(hours, ny(2026, 1, 5, 12, 0))  # the rules take whatever validation lets in
