"""Drives the api through a client generated from its own OpenAPI document.

Run by scripts/openapi-client with the generated package on the path:
    roundtrip.py <base url> <api key>
Every step checks what a client author would rely on: the typed models
parse the responses, and If-Match guards a replace.
"""
import sys
import uuid

from elk_client import AuthenticatedClient
from elk_client.api.elkservice import (
    create_service,
    delete_service,
    get_service,
    list_services,
    replace_service,
)
from elk_client.models import NewService, Service, ServiceUpdate, Status


def check(condition, what):
    if not condition:
        sys.exit(f"generated client: {what}")
    print(f"ok: {what}")


def main(base_url, key):
    client = AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)
    name = f"gen-{uuid.uuid4().hex[:8]}"

    created = create_service.sync_detailed(
        client=client, body=NewService(name=name, status=Status.NORMAL, running=True)
    )
    check(created.status_code == 201 and isinstance(created.parsed, Service), "create answers 201 with a Service")
    row = created.parsed
    check(row.name == name and row.status == Status.NORMAL and row.running, "the created row is as sent")

    got = get_service.sync_detailed(row.id, client=client)
    check(got.status_code == 200 and got.parsed.name == name, "get reads the row back")
    etag = got.headers["ETag"]

    listed = list_services.sync(client=client, query=f"Name:{name}")
    check([s.name for s in listed] == [name], "the listing finds it by name")

    update = ServiceUpdate(name=name, status=Status.DOWN, running=False, failed_count=1, detail="stopped")
    replaced = replace_service.sync_detailed(row.id, client=client, body=update, if_match=etag)
    check(replaced.status_code == 200 and replaced.parsed.status == Status.DOWN, "replace with If-Match applies")

    client = AuthenticatedClient(base_url=base_url, token=key)
    stale = replace_service.sync_detailed(row.id, client=client, body=update, if_match=etag)
    check(stale.status_code == 412, "replace with a stale If-Match is refused with 412")
    check(get_service.sync(row.id, client=client).detail == "stopped", "the refused replace changed nothing")

    deleted = delete_service.sync_detailed(row.id, client=client)
    check(deleted.status_code == 204, "delete answers 204")
    check(get_service.sync_detailed(row.id, client=client).status_code == 404, "the deleted row is gone")


if __name__ == "__main__":
    main(*sys.argv[1:3])
