"""Number entry rules, without Flask, Twilio or DynamoDB."""
import pytest

from callback.domain.numbers import check_callback_entry, is_agent_address, mask, speakable


@pytest.mark.parametrize("digits", ["2125551234", "9999999999", "2022220000", " 4155552671 "])
def test_valid_ten_digit_nanp_numbers_become_e164(digits):
    check = check_callback_entry(digits)
    assert check.ok and check.e164 == "+1" + digits.strip()


@pytest.mark.parametrize("digits, problem", [
    ("", "empty"),
    (None, "empty"),
    ("212555123", "too_short"),
    ("21255512345", "too_long"),
    ("12125551234", "leading_one"),
    ("1212555123", "leading_one"),
    ("0125551234", "bad_area_code"),
    ("2120551234", "bad_exchange"),
    ("2121551234", "bad_exchange"),
    ("212555*234", "not_digits"),
    ("212555#234", "not_digits"),
    ("２１２５５５１２３４", "not_digits"),
    ("2" * 10_000, "too_long"),
])
def test_invalid_entries_say_what_is_wrong(digits, problem):
    check = check_callback_entry(digits)
    assert not check.ok and check.e164 is None and check.problem == problem


def test_a_leading_one_is_never_accepted_whatever_follows():
    for rest in ("2125551234", "212555123", "000000000"):
        assert not check_callback_entry("1" + rest).ok


def test_speakable_groups_digits():
    assert speakable("+12125551234") == "2 1 2, 5 5 5, 1 2 3 4"


@pytest.mark.parametrize("number, shown", [
    ("+12125551234", "+*********34"), ("sip:alice@example.com", "sip:***"), ("", "-"), (None, "-")])
def test_mask_hides_all_but_two_digits(number, shown):
    assert mask(number) == shown


@pytest.mark.parametrize("address, ok", [
    ("+14155550100", True), ("sip:agent7@pbx.example.com", True), ("client:alice", True),
    ("4155550100", False), ("sip:nohost", False), ("client:", False), ("", False)])
def test_agent_addresses(address, ok):
    assert is_agent_address(address) is ok
