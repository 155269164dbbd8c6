"""The audit trail in the portal (`/admin/audit`, on the admin blueprint: a signed-in admin
only) and through the API (`GET /api/audit`, on the API's blueprint: its bearer token and
JSON errors): newest first, filtered by kind of target, who and date range, a page at a time."""
from flask import abort, current_app, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from callback.domain import audit
from callback.domain.settings import parse_int
from callback.web import admin, api
from callback.web.auth import login_required

PAGE_SIZE = 25


def _cursor():
    return URLSafeSerializer(current_app.secret_key, salt="audit-page")


def _page(audit_filter, limit, after):
    """(entries, the next page's cursor or None); BadSignature for a cursor not ours, or one
    of other filters (a cursor is a key of the index its filters read)."""
    scope = [audit_filter.kind, audit_filter.actor]
    start = None
    if after:
        cursor = _cursor().loads(after)
        if not isinstance(cursor, dict) or cursor.get("scope") != scope:
            raise BadSignature("a cursor of other filters")
        start = cursor["key"]
    entries, last = admin.services().storage.list_audit(audit_filter, limit=limit, start_key=start)
    return entries, _cursor().dumps({"scope": scope, "key": last}) if last else None


@admin.bp.get("/audit")
@login_required
def audit_trail():
    """Who changed what and when, newest first; filters by kind, who and dates (UTC)."""
    audit_filter, errors = audit.read_filter(request.args)
    if errors:
        entries, after = [], None
    else:
        try:
            entries, after = _page(audit_filter, PAGE_SIZE, request.args.get("after"))
        except BadSignature:
            abort(400)
    values = {k: request.args.get(k, "").strip() for k in ("kind", "actor", "since", "until")}
    return render_template("audit.html", entries=entries, after=after, values=values, errors=errors,
                           kinds=audit.KIND_LABELS), 400 if errors else 200


@api.bp.get("/audit")
@api.token_required
def api_audit():
    """The audit trail newest first: ?kind=&actor=&since=&until=&limit=&after= (an opaque cursor)."""
    audit_filter, errors = audit.read_filter(request.args)
    if errors:
        raise api.ApiError(400, "invalid filter", errors)
    try:
        limit = parse_int(request.args.get("limit", "50"), 1, 200)
    except ValueError as exc:
        raise api.ApiError(400, "invalid limit", {"limit": "1 to 200"}) from exc
    if not current_app.secret_key:
        raise api.ApiError(503, "paging is unavailable: this deployment has no SECRET_KEY")
    try:
        entries, after = _page(audit_filter, limit, request.args.get("after"))
    except BadSignature as exc:
        raise api.ApiError(400, "invalid cursor", {"after": "use the value the API returned"}) from exc
    return jsonify(entries=[audit.to_json(e) for e in entries], after=after)
