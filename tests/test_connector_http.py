"""The HTTP client GitHub's and Jira's connectors share (service/connectors/http.py), on
answers made in the test (httpx's MockTransport): a source that never stops asking to wait
is not waited for ever, and a next page on another host never gets the token."""

import httpx
import pytest

from service.connectors.http import RateLimited, SourceClient, SourceFailed

TOKEN = {"Authorization": "Bearer secret-token"}


def test_a_source_that_keeps_answering_wait_pauses_the_run_past_the_longest_wait() -> None:
    asked: list[str] = []

    def always_limited(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(429, headers={"Retry-After": "5"}, json={"message": "slow down"})

    slept: list[float] = []
    client = SourceClient(
        "jira",
        "https://jira.example.com",
        headers=TOKEN,
        sleeper=slept.append,
        max_wait_s=12,
        transport=httpx.MockTransport(always_limited),
    )
    with client, pytest.raises(RateLimited, match="15 s"):
        client.get("/rest/api/3/search/jql")
    assert slept == [5.0, 5.0] and len(asked) == 3


def test_a_next_page_on_another_host_is_not_followed_and_gets_no_token() -> None:
    hosts: list[str] = []

    def pages(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        link = '<https://evil.example.net/steal?page=2>; rel="next"'
        return httpx.Response(200, headers={"Link": link}, json=[{"id": 1}])

    client = SourceClient(
        "github",
        "https://api.github.com",
        headers=TOKEN,
        transport=httpx.MockTransport(pages),
    )
    with client, pytest.raises(SourceFailed, match=r"evil\.example\.net"):
        list(client.pages("/repos/acme/api/pulls"))
    assert hosts == ["api.github.com"]


def test_a_next_page_on_the_same_host_is_followed() -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=[{"id": 2}])
        link = '<https://api.github.com/repos/acme/api/pulls?page=2>; rel="next"'
        return httpx.Response(200, headers={"Link": link}, json=[{"id": 1}])

    client = SourceClient(
        "github", "https://api.github.com", headers=TOKEN, transport=httpx.MockTransport(pages)
    )
    with client:
        assert [a.data for a in client.pages("/repos/acme/api/pulls")] == [[{"id": 1}], [{"id": 2}]]
