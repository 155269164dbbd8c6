"""Recording the audit trail from a handler (or a `flask` command, in the app's context): one
call, after the change was stored.

    trail.record(audit.SETTINGS, "changed", ivr.name, before_fields, after_fields)

Who: in the portal the signed-in admin (`auth.current_admin()`); through the API
`flask.g.api_actor` when the API's authentication set it (`token:<name>`, or a username),
else "api-token" (the one token from the environment). When: the app's clock. What: the
diff of the two states (`callback.domain.audit.changes`), numbers masked, secrets hidden.
For users and API tokens, the same call with `audit.USER` or `audit.TOKEN`, the username or
the token's name as target, and the fields of each state (a password or token hash field is
recorded only as changed).

A change is never undone or refused for its entry: when the entry cannot be written after
the change was stored, the failure is logged at ERROR (kind, action, target and who, never
the values) and counted as the metric AuditWriteFailures (an alarm watches it), and the user
gets the answer of the change that did happen.
"""
import logging

from flask import current_app, g, has_request_context, request

from callback import metrics
from callback.domain import audit
from callback.web.auth import current_admin

log = logging.getLogger(__name__)
# What the API's actor is when its authentication names none: the environment's one token.
API_TOKEN_ACTOR = "api-token"


def actor_and_channel():
    """(who, through what) for the request being served; a `flask` command serves none."""
    if not has_request_context():
        return "cli", audit.CLI
    if request.path == "/api" or request.path.startswith("/api/"):
        return g.get("api_actor") or API_TOKEN_ACTOR, audit.API
    return current_admin() or "unknown", audit.PORTAL


def record(kind, action, target, before=None, after=None, detail=None):
    """Record a change that was stored (nothing when no field changed and there is no
    detail); never raises. Returns the entry written, or None."""
    actor, via = actor_and_channel()
    try:
        svc = current_app.extensions["callback"]
        entry = audit.new_entry(now=svc.clock.now(), actor=actor, via=via, kind=kind, action=action,
                                target=target, before=before, after=after, detail=detail)
        if entry is not None:
            svc.storage.append_audit(entry)
        return entry
    except Exception:
        # The change stands: losing its entry is on-call's to see, not the user's error.
        log.error("AUDIT ENTRY LOST: %s %s of %r by %s via %s was stored but not recorded", kind, action,
                  target, actor, via, exc_info=True)
        metrics.emit({metrics.AUDIT_WRITE_FAILURES: 1}, kind=kind, action=action, actor=actor, via=via)
        return None


def record_ivr(before, after):
    """An IVR created or changed through its form or the API: its numbers and greeting as one
    entry (kind ivr), its queues as another (kind queue), each only when something changed."""
    action = "created" if before is None else "changed"
    record(audit.IVR, action, after.name, audit.ivr_fields(before), audit.ivr_fields(after))
    record(audit.QUEUE, "changed", after.name, audit.queue_fields(before), audit.queue_fields(after))
