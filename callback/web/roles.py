"""Who may open what: every portal endpoint's minimum role, over the role hierarchy of
callback.domain.users (agent < supervisor < admin: each role may open what the ones below
it may).

auth.require_role checks it before every portal request. An endpoint missing from PORTAL
is an admin's only (fail closed), and tests/test_roles.py fails until it is classified.
Routes outside the portal say here how they are guarded instead (OUTSIDE_PORTAL, by
blueprint); the API's own per-route roles can sit beside PORTAL in the same shape.
"""
from callback.domain.users import ADMIN, AGENT, ROLE_LABELS, ROLES, SUPERVISOR, at_least

__all__ = ["ADMIN", "AGENT", "OUTSIDE_PORTAL", "PORTAL", "ROLES", "ROLE_LABELS", "SUPERVISOR",
           "minimum_role", "may_open"]

# endpoint -> the least role that may open it (every method of the route alike).
PORTAL = {
    # Every signed-in user: their own page, and the portal's front door (it sends each
    # role to its own first page).
    "me.page": AGENT,
    "me.password": AGENT,
    # An agent's own page (agent_page.whose_page refuses an agent any other agent's);
    # supervisors and admins may open every agent's.
    "agent_page.today": AGENT,
    "agent_page.today_data": AGENT,
    "agent_page.presence": AGENT,
    "admin.home": AGENT,
    # Supervisors: watch the line, look after callbacks and agents' presence.
    "admin.dashboard": SUPERVISOR,
    "admin.dashboard_data": SUPERVISOR,
    "admin.queues": SUPERVISOR,
    "admin.agents": SUPERVISOR,
    "admin.agent_status": SUPERVISOR,
    "admin.callbacks": SUPERVISOR,
    "admin.callback_detail": SUPERVISOR,
    "admin.callback_cancel": SUPERVISOR,
    "voicemail_portal.recording": SUPERVISOR,
    # Admins: how the center is set up, who may sign in, and erasure.
    "admin.ivrs": ADMIN,
    "admin.ivr_new": ADMIN,
    "admin.ivr_edit": ADMIN,
    "admin.ivr_settings": ADMIN,
    "hours.ivr_hours": ADMIN,
    "admin.agent_new": ADMIN,
    "admin.agent_edit": ADMIN,
    "privacy.admin_forget": ADMIN,
    "users.list": ADMIN,
    "users.new": ADMIN,
    "users.edit": ADMIN,
    "users.disable": ADMIN,
    "users.enable": ADMIN,
    "users.password": ADMIN,
    "tokens.api_tokens": ADMIN,
    "tokens.revoke_token": ADMIN,
    "admin.audit_trail": ADMIN,
}

# blueprint (or endpoint, for Flask's own "static") -> how its routes are guarded instead.
OUTSIDE_PORTAL = {
    "auth": "signing in and out: open to anyone",
    "health": "open: says only whether the app is ready",
    "static": "open: the stylesheet and the dashboard's script",
    "voice": "Twilio's webhooks: a valid Twilio signature",
    "sms": "Twilio's webhooks: a valid Twilio signature",
    "api": "the JSON API: a bearer token",
    "privacy_api": "the JSON API: a bearer token",
    "public": "the public callback page: open, behind its challenge, Twilio Verify and rate limits",
}


def minimum_role(endpoint):
    """The least role that may open a portal endpoint; admin for one not classified yet."""
    return PORTAL.get(endpoint, ADMIN)


def may_open(role, endpoint):
    """True when a user of `role` may open the portal endpoint."""
    return at_least(role, minimum_role(endpoint))
