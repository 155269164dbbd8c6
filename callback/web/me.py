"""A signed-in user's own page (/me): where an agent lands. A user linked to an agent goes
on to that agent's page (agent_page); anyone else sees who they are."""
from flask import Blueprint, current_app, redirect, render_template, url_for

from callback.storage import NotFound, StorageError
from callback.web.auth import current_user, storage_unavailable

bp = Blueprint("me", __name__)
bp.register_error_handler(StorageError, storage_unavailable)


@bp.get("/me")
def page():
    """The linked agent's own page; else the user's name and role (and a link that is gone)."""
    user = current_user()
    agent = None
    if user.agent_id:
        try:
            agent = current_app.extensions["callback"].storage.get_agent(user.agent_id)
        except NotFound:
            agent = None
    if agent is not None:
        return redirect(url_for("agent_page.today", agent_id=agent.agent_id))
    return render_template("me.html", user=user, agent=agent)
