"""Which numbers deserve a call (#32): the numbering plan's data, and each IVR's rules."""
import phonenumbers
import pytest

from callback.domain import dialing as d

EVERY_NANP_REGION = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


def example(region, kind=phonenumbers.PhoneNumberType.FIXED_LINE):
    number = phonenumbers.example_number_for_type(region, kind)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_every_region_of_the_plus_one_plan_has_a_name_for_the_admin():
    assert sorted(d.NANP_REGION_NAMES) == EVERY_NANP_REGION


@pytest.mark.parametrize("region", EVERY_NANP_REGION)
def test_every_plus_one_region_against_the_default_list(region):
    """The US and its territories are called by default; Canada is one tick away; the
    Caribbean (billed as international) is not."""
    number = example(region)
    expected = None if region in ("US", "AS", "GU", "MP", "PR", "VI") else d.OUTSIDE_REGIONS
    assert d.region_of(number) == region
    assert d.why_not_callable(number) == expected
    assert d.why_not_callable(number, d.DialRules(regions=(*d.DEFAULT_REGIONS, region))) is None


@pytest.mark.parametrize("number, why", [
    ("+19005551234", d.PREMIUM),           # 900
    ("+12469761234", d.PREMIUM),           # Barbados 246-976
    ("+13459761234", d.PREMIUM),           # Cayman 345-976
    ("+14115551234", d.NOT_VALID),         # a service code is no area code
    ("+19115551234", d.NOT_VALID),
    ("+15555551234", d.NOT_VALID),
    ("+12465551234", d.NOT_VALID),         # a Barbados range that is not open
    ("+18765551234", d.OUTSIDE_REGIONS),   # Jamaica
    ("+18095551234", d.OUTSIDE_REGIONS),   # Dominican Republic
    ("+16135551234", d.OUTSIDE_REGIONS),   # Canada: not by default
    ("+18005551234", None),                # toll-free: called by default
    ("+15005551234", d.PERSONAL),          # 5XX: refused by default
    ("+442071838750", d.NOT_NANP),
    ("not a number", d.NOT_NANP),
    ("+12125551234", None),
    ("+17875551234", None),                # Puerto Rico
    ("+16715551234", None),                # Guam
])
def test_numbers_nobody_should_dial_are_refused_by_the_plans_data(number, why):
    assert d.why_not_callable(number) == why


def test_toll_free_and_personal_numbers_are_decided_per_ivr():
    assert d.why_not_callable("+18885550100", d.DialRules(toll_free=False)) == d.TOLL_FREE
    assert d.why_not_callable("+15335551234", d.DialRules(personal=True)) is None
    # Premium stays refused whatever an IVR allows.
    assert d.why_not_callable("+19005551234", d.DialRules(regions=tuple(d.NANP_REGION_NAMES),
                                                          toll_free=True, personal=True)) == d.PREMIUM


def test_an_agent_phone_may_be_anywhere_but_never_premium_or_invalid():
    assert d.why_not_agent_phone("+442071838750") is None
    assert d.why_not_agent_phone("+16135551234") is None
    assert d.why_not_agent_phone("+19005551234") == d.PREMIUM
    assert d.why_not_agent_phone("+14115551234") == d.NOT_VALID


@pytest.mark.parametrize("raw, out", [
    (["US", "ca"], ("US", "CA")),
    ("US, PR", ("US", "PR")),
    (["CA", "US", "US"], ("US", "CA")),
])
def test_regions_parse_in_a_stable_order(raw, out):
    assert d.parse_regions(raw) == out


@pytest.mark.parametrize("raw", [[], "", ["GB"], [1], "US XX", None])
def test_regions_outside_the_plan_or_none_are_refused(raw):
    with pytest.raises(ValueError):
        d.parse_regions(raw)
