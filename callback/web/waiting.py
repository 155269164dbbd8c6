"""Why a pending callback waits, as the admin pages show it beside its status.

A blueprint without routes: it gives the templates `waiting_reason(cb)` ("outside the
customer's hours (their time 07:12)"), read from the cached routing directory and the
clock, so the list and detail pages say why a due callback is not dialed yet.
"""
from flask import Blueprint, current_app

bp = Blueprint("waiting", __name__)


@bp.app_template_global("waiting_reason")
def waiting_reason(cb):
    """Why this pending callback is not dialed now, or None."""
    return current_app.extensions["callback"].dispatcher.waiting_reason(cb)
