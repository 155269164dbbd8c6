"""A signed-in user's own page (/me): where an agent lands. Small for now: who they are and
their linked agent's presence."""
from flask import Blueprint, current_app, render_template

from callback.storage import NotFound, StorageError
from callback.web.auth import current_user, storage_unavailable

bp = Blueprint("me", __name__)
bp.register_error_handler(StorageError, storage_unavailable)


@bp.get("/me")
def page():
    """The user's name and role, and their linked agent's presence."""
    user = current_user()
    agent = None
    if user.agent_id:
        try:
            agent = current_app.extensions["callback"].storage.get_agent(user.agent_id)
        except NotFound:
            agent = None
    return render_template("me.html", user=user, agent=agent)
