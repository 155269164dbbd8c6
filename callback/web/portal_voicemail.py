"""The admin portal's voicemail audio: a message's recording, fetched from Twilio server-side
with the account's credentials and served from the app (accounts may require HTTP auth on
media URLs, and the portal never hands out Twilio's URLs)."""
from flask import Blueprint, abort, current_app

from callback.storage import NotFound, StorageError
from callback.web.auth import login_required, storage_unavailable
from callback.web.voice.voicemail_hooks import audio_response

bp = Blueprint("voicemail_portal", __name__, url_prefix="/admin")
bp.register_error_handler(StorageError, storage_unavailable)


@bp.get("/callbacks/<callback_id>/recording.mp3")
@login_required
def recording(callback_id):
    """The recording of a voicemail, for the callback page's player."""
    svc = current_app.extensions["callback"]
    try:
        cb = svc.storage.get_callback(callback_id)
    except NotFound:
        abort(404)
    if not cb.recording_sid:
        abort(404)
    return audio_response(svc, cb)
