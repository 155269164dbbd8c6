"""The offer on time, whatever the hold music: the hold loop cuts each wait document to the
next prompt, played by the Twilio model (every track for its real length) against the real
app over signed webhooks on DynamoDB Local, in stepped time (the app's clock moves exactly
as the caller's call does)."""
import io
import wave

import pytest
from conftest import IVR_NUMBER, PUBLIC, twiml
from test_caller_flow import QUEUE_SID, call_params, wait_url
from test_twilio_model import model  # noqa: F401 (a fixture)

from callback import create_app
from callback.domain.hold import FILLER_SECONDS, HoldTrack, between_prompts, until_due
from callback.domain.records import Ivr, Queue
from callback.domain.settings import CallbackSettings
from devtools.twilio_model import Keys

THREE_MINUTES = "https://music.example.com/three-minutes.mp3"
CLIP = f"{PUBLIC}/voice/hold-clip.wav"
OFFER = "Press 1 to be called back"


@pytest.fixture
def hold_app(config_overrides):
    """A factory: the app with some hold music, on fresh tables, with one IVR of one queue."""

    def build(**config):
        app = create_app({**config_overrides, **config})
        app.config["TESTING"] = True
        svc = app.extensions["callback"]
        svc.storage.create_tables()
        svc.storage.save_ivr(Ivr("Solo", numbers=(IVR_NUMBER,), greeting="Hello.",
                                 queues=(Queue("Only", "Solo", 1),), settings=CallbackSettings()))
        return app

    return build


def hold_until_patience_ends(model, app, patience, **tracks):  # noqa: F811
    """A caller who presses nothing holds in the IVR's queue; returns what they heard, with
    when (seconds since they entered the queue)."""
    network = model(app, clock=app.extensions["callback"].clock, stepped=True, tracks=tracks)
    run = network.dial_in("+12125550160", IVR_NUMBER, Keys(responder=lambda prompt: ""), patience=patience)
    assert run.ending == "hung-up-by-caller" and not network.webhooks.errors
    return [(at - run.enqueued_at, what) for at, what in run.heard if at >= run.enqueued_at]


def offers(heard):
    return [at for at, what in heard if what.startswith(OFFER)]


# A reminder comes after the music between prompts, plus the offer itself, the Gather's
# 3 s wait for a key and Twilio's request for the next document.
PROMPT_AND_GAPS = 15


@pytest.mark.parametrize("music, app_seconds, model_tracks, music_between", [
    # A three-minute track the app knows nothing about: the app's own clip until the offer,
    # then the offer's reminder after each whole play of the track.
    (THREE_MINUTES, 0, {THREE_MINUTES: 180}, 180),
    # A 25-second track whose length the app is told: whole plays fill the wait where they
    # fit, and the reminder comes after two of them (about a minute).
    ("https://music.example.com/clip-25.mp3", 25, {"https://music.example.com/clip-25.mp3": 25}, 50),
    # No track: the app's own clip throughout (the model reads its length from the WAV).
    ("", 0, {}, 60),
])
def test_the_first_offer_comes_on_time_and_each_reminder_on_its_schedule(
        model, hold_app, music, app_seconds, model_tracks, music_between):  # noqa: F811
    app = hold_app(HOLD_MUSIC_URL=music, HOLD_MUSIC_SECONDS=app_seconds)
    heard = hold_until_patience_ends(model, app, 400, **model_tracks)
    first, second = offers(heard)[:2]
    offer_after = CallbackSettings().offer_after_seconds
    assert offer_after <= first <= offer_after + 10, heard
    assert music_between <= second - first <= music_between + PROMPT_AND_GAPS, heard
    # Never silence: before the offer the caller hears the hold message and music only.
    before = {what for at, what in heard if at < first}
    assert before <= {"Thank you for holding. An agent will be with you as soon as possible.",
                      f"♪ {music}", f"♪ {CLIP}"}, before


def test_a_three_minute_track_is_never_played_where_it_would_delay_the_offer(model, hold_app):  # noqa: F811
    app = hold_app(HOLD_MUSIC_URL=THREE_MINUTES)
    heard = hold_until_patience_ends(model, app, 300, **{THREE_MINUTES: 180})
    first = offers(heard)[0]
    assert [at for at, what in heard if what == f"♪ {THREE_MINUTES}"][0] >= first
    assert any(what == f"♪ {CLIP}" for at, what in heard if at < first)


def test_the_first_document_lasts_until_the_offer_is_due(twilio, main_line):
    root = twiml(twilio.post_url(wait_url(), call_params(QueueTime="0", QueueSid=QUEUE_SID)))
    assert [e.tag for e in root] == ["Say", "Play", "Redirect"]
    # The hold message (about 5 s), then 14 plays of the 4 s clip: 61 s, the offer due at 60.
    play = root.find("Play")
    assert (play.text, play.get("loop")) == (CLIP, "14")


# -- the timetable, plain ---------------------------------------------------------------------

UNKNOWN = HoldTrack(THREE_MINUTES)
KNOWN_25 = HoldTrack("https://music.example.com/clip-25.mp3", 25)
NONE = HoldTrack("")


@pytest.mark.parametrize("seconds, track, plays, fillers", [
    (56, UNKNOWN, 0, 14),  # the clip only: 56 s exactly
    (57, UNKNOWN, 0, 15),  # a step past the due moment, never short of it
    (56, KNOWN_25, 2, 2),  # 50 s of the track, 6 s left: two clips (2 s past due)
    (73, KNOWN_25, 3, 0),  # three plays end 2 s past due: close enough
    (10, KNOWN_25, 0, 3),
    (56, NONE, 0, 14),
])
def test_a_wait_is_filled_to_the_due_moment(seconds, track, plays, fillers):
    audio = until_due(seconds, track, message_seconds=0)
    assert (audio.plays, audio.fillers) == (plays, fillers)
    length = audio.plays * (track.seconds or 0) + audio.fillers * FILLER_SECONDS
    assert seconds <= length <= seconds + 5


def test_the_hold_message_is_said_only_before_a_long_enough_wait():
    assert until_due(60, UNKNOWN, message_seconds=5).message
    assert not until_due(12, UNKNOWN, message_seconds=5).message


@pytest.mark.parametrize("track, plays, fillers", [
    (UNKNOWN, 1, 0), (KNOWN_25, 2, 0), (HoldTrack("https://x/long.mp3", 200), 1, 0), (NONE, 0, 15)])
def test_between_prompts_the_track_plays_whole_about_a_minute(track, plays, fillers):
    audio = between_prompts(track)
    assert (audio.plays, audio.fillers) == (plays, fillers)


def test_the_app_serves_its_clip_at_the_length_the_timetable_counts(client):
    answer = client.get("/voice/hold-clip.wav")
    assert answer.status_code == 200 and answer.mimetype == "audio/wav"
    with wave.open(io.BytesIO(answer.data)) as clip:
        assert clip.getnframes() / clip.getframerate() == FILLER_SECONDS
    assert "public" in answer.headers["Cache-Control"]


def test_the_model_counts_the_time_a_caller_held_in_the_queue(model, hold_app):  # noqa: F811
    """The soak's holding caller-minutes come from each caller's record (`held`)."""
    app = hold_app(HOLD_MUSIC_URL="")
    network = model(app, clock=app.extensions["callback"].clock, stepped=True, tracks={})
    run = network.dial_in("+12125550161", IVR_NUMBER, Keys(responder=lambda prompt: ""), patience=200)
    assert run.ending == "hung-up-by-caller"
    assert run.call.record.held == pytest.approx(200 - run.enqueued_at, abs=2)
