"""scim2-tester's conformance checks against the app under a real HTTP server
(tests/scim_server.py): discovery, and for Users and Groups create, read, list, search,
attributes, replace, delete and PATCH add / remove / replace of every attribute the
published schema has. Which checks run, and which are skipped and why, is in
docs/connectors.md ("SCIM provisioning")."""

from collections.abc import Iterator

import httpx2
import pytest
from pydantic import SecretStr
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import Engine

from service.settings import Settings
from tests.scim_server import SCIM_TOKEN, serving


@pytest.fixture
def scim_client(settings: Settings, engine: Engine) -> Iterator[SyncSCIMClient]:
    configured = settings.model_copy(update={"scim_token": SecretStr(SCIM_TOKEN)})
    with serving(configured, engine) as base:
        http = httpx2.Client(
            base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
        )
        with http:
            yield SyncSCIMClient(http)


# Every check scim2-tester has for a resource type; all must pass for User and Group.
RESOURCE_CHECKS = {
    "object_creation",
    "object_query",
    "object_query_without_id",
    "object_query_with_attributes",
    "object_list_with_attributes",
    "object_replacement",
    "object_deletion",
    "check_add_attribute",
    "check_remove_attribute",
    "check_replace_attribute",
}
# Skipped, and why (docs/connectors.md): searching every resource type at once (POST
# /.search at the root) is answered 501, as RFC 7644 §3.12 allows; /Users/.search and
# /Groups/.search are served (tests/test_scim_hostile.py reads them).
SKIPPED = {"search_with_attributes"}


def test_scim2_tester_passes_for_users_and_groups(scim_client: SyncSCIMClient) -> None:
    results = check_server(scim_client, raise_exceptions=False)
    failures = [
        f"{r.title} [{r.resource_type}]: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert not failures, "\n".join(failures)
    assert {r.title for r in results if r.status == Status.SKIPPED} == SKIPPED
    for resource_type in ("User", "Group"):
        passed = {
            r.title
            for r in results
            if r.status == Status.SUCCESS and r.resource_type == resource_type
        }
        assert passed == RESOURCE_CHECKS, resource_type
    discovery = {r.title for r in results if r.resource_type is None}
    assert {"service_provider_config_endpoint", "query_all_schemas", "random_url"} <= discovery
    assert len([r for r in results if r.status == Status.SUCCESS]) >= 60
