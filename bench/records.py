"""What several bench parts share: counting DynamoDB requests, loading a callbacks table."""
from contextlib import contextmanager
from datetime import timedelta


@contextmanager
def dynamodb_calls():
    """Count DynamoDB requests made through PynamoDB."""
    from pynamodb.connection.base import Connection

    real, counter = Connection._make_api_call, {"n": 0, "scanned": 0}

    def counting(self, operation, kwargs):
        counter["n"] += 1
        response = real(self, operation, kwargs)
        if operation == "Query":
            counter["scanned"] += response.get("ScannedCount", 0)
        return response

    Connection._make_api_call = counting
    try:
        yield counter
    finally:
        Connection._make_api_call = real


def load_callbacks(svc, clock, size, due):
    """`due` pending callbacks past expiry; the rest finished (or pending, not yet due)."""
    client = svc.storage.CallbackRec._get_connection().connection.client
    table = svc.storage.CallbackRec.Meta.table_name
    now = clock.now()
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")  # noqa: E731
    items = []
    for i in range(size):
        if i < due:
            status, sweep_at, expires = "pending", now - timedelta(minutes=1), now - timedelta(minutes=1)
        elif i % 10 == 0:
            status, sweep_at, expires = "pending", now + timedelta(hours=1), now + timedelta(hours=2)
        else:
            status, sweep_at, expires = "completed", None, now - timedelta(days=1)
        item = {"callback_id": {"S": f"CA{i:010d}"}, "number": {"S": "+12125550000"},
                "ivr_name": {"S": "Main Line"}, "queue_name": {"S": "Sales"},
                "requested_at": {"S": stamp(now)}, "place_in_line": {"S": stamp(now)},
                "priority": {"N": "10"}, "due_at": {"S": stamp(now)}, "expires_at": {"S": stamp(expires)},
                "status": {"S": status}, "attempts": {"N": "0"}, "history": {"L": []}, "list_key": {"S": "CB"}}
        if sweep_at:
            item.update(sweep_status={"S": status}, sweep_at={"S": stamp(sweep_at)})
        items.append({"PutRequest": {"Item": item}})
        if len(items) == 25:
            client.batch_write_item(RequestItems={table: items})
            items = []
    if items:
        client.batch_write_item(RequestItems={table: items})
