"""Twilio set up by one command (#35): every IVR number points at this deployment; a dry
run changes nothing; twice changes nothing more; an unknown or bound number is said."""
import pytest
from conftest import IVR_NUMBER, PUBLIC
from test_contract import assert_in_spec

from callback.work.twilio_setup import set_up_numbers

FALLBACK = "https://handler.twilio.com/twiml/EH" + "0" * 32


@pytest.fixture
def config_overrides(config_overrides):
    return {**config_overrides, "VOICE_FALLBACK_URL": FALLBACK}


def run(svc, **kwargs):
    return set_up_numbers(svc.storage, svc.telephony, svc.config, **kwargs)


def test_every_number_is_pointed_at_this_deployment_once(svc, main_line, twilio_standin):
    sid = twilio_standin.own_number(IVR_NUMBER, voice_url="https://old.example.com/voice", voice_method="GET")
    dry = run(svc, dry_run=True)
    assert twilio_standin.numbers[sid]["voice_url"] == "https://old.example.com/voice", "a dry run changes nothing"
    assert any("would set voice_url https://old.example.com/voice -> " in line for line in dry[0].lines())
    [done] = run(svc)
    assert done.applied and not done.problem
    number = twilio_standin.numbers[sid]
    assert (number["voice_url"], number["voice_method"]) == (f"{PUBLIC}/voice/incoming", "POST")
    assert (number["status_callback"], number["status_callback_method"]) == (f"{PUBLIC}/voice/caller/status", "POST")
    assert (number["voice_fallback_url"], number["voice_fallback_method"]) == (FALLBACK, "POST")
    requests = len(twilio_standin.requests)
    [again] = run(svc)
    assert again.changes == {} and again.lines()[-1].endswith("already set up")
    assert [r["method"] for r in twilio_standin.requests[requests:]] == ["GET"], "the second run only reads"
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_a_number_the_account_does_not_own_is_a_clear_error(svc, main_line, twilio_standin):
    [result] = run(svc)
    assert result.problem == "the Twilio account does not own this number" and not result.applied
    assert "does not own" in result.lines()[0]


@pytest.mark.parametrize("binding", [{"voice_application_sid": "AP" + "1" * 32}, {"trunk_sid": "TK" + "1" * 32}])
def test_a_number_bound_to_an_app_or_a_trunk_is_left_alone_unless_taken_over(svc, main_line, twilio_standin,
                                                                              binding):
    sid = twilio_standin.own_number(IVR_NUMBER, **binding)
    [left] = run(svc)
    assert "ignores its Voice URL" in left.problem and twilio_standin.numbers[sid]["voice_url"] is None
    [taken] = run(svc, take_over=True)
    number = twilio_standin.numbers[sid]
    assert taken.applied and number["voice_url"] == f"{PUBLIC}/voice/incoming"
    assert number["voice_application_sid"] is None and number["trunk_sid"] is None
    for request in twilio_standin.requests:
        assert_in_spec(request)


def test_the_command_prints_what_it_changes_and_fails_on_a_problem(app, main_line, twilio_standin):
    twilio_standin.own_number(IVR_NUMBER)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["twilio-setup", "--dry-run"])
    assert result.exit_code == 0 and "would set voice_url (empty) -> " in result.output
    twilio_standin.numbers.clear()
    assert runner.invoke(args=["twilio-setup"]).exit_code == 1


def test_a_callers_call_that_ended_frees_their_number_and_their_place(twilio, svc, clock, main_line):
    from test_dispatch import CUSTOMER

    holding = "CA" + "9" * 32
    svc.storage.add_waiting_call(holding, ivr_name="Main Line", queue_name="Sales", caller=CUSTOMER,
                                 joined_at=clock.now())
    svc.dispatcher.caller_holding(holding, CUSTOMER)
    response = twilio.post("/voice/caller/status", {"CallSid": holding, "From": CUSTOMER, "CallStatus": "completed"})
    assert response.status_code == 200
    assert svc.storage.get_leg(CUSTOMER) is None and svc.storage.get_waiting_call(holding) is None
