"""A local stand-in for GitHub's REST API, for the connector's tests and evals/bench_sync.py.

It serves what it holds in GitHub's shapes (tests/fixtures/github/ has the documented
examples it is loaded with), and behaves as the API does where the connector depends on
it: lists sorted by `updated_at` (desc or asc), `state` and `since` filters, pages with
RFC 8288 Link headers (rel="next" and "last"), an ETag on every answer and 304 to a
matching If-None-Match, rate-limit headers, an installation token for a JWT. Answers can
be queued for the next matching request (a 403 rate limit, a malformed page). Every
request is recorded, so a test can assert what an incremental run asked for.
"""

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

JsonObject = dict[str, Any]
_PULLS = re.compile(r"^/repos/([^/]+/[^/]+)/pulls$")
_PULL = re.compile(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$")
_REVIEWS = re.compile(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)/reviews$")
_ISSUES = re.compile(r"^/repos/([^/]+/[^/]+)/issues$")
_ORG_REPOS = re.compile(r"^/orgs/([^/]+)/repos$")
_REPO = re.compile(r"^/repos/([^/]+/[^/]+)$")
_TOKEN = re.compile(r"^/app/installations/(\d+)/access_tokens$")
DEFAULT_SIZES = {"additions": 10, "deletions": 2, "changed_files": 1, "commits": 1}


@dataclass(frozen=True)
class Seen:
    """A request as the stand-in saw it."""

    method: str
    path: str
    query: Mapping[str, str]
    if_none_match: str | None
    authorization: str | None
    status: int


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Queued:
    """An answer served once, instead of the real one, to the next request whose path
    matches `path` (a regular expression)."""

    path: str
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class GitHubStandIn:
    """What the stand-in holds, per repository (full name): pull requests (list items),
    their detail answers where they differ, reviews, and issues."""

    repos: list[JsonObject] = field(default_factory=list)
    pulls: dict[str, dict[int, JsonObject]] = field(default_factory=dict)
    details: dict[str, dict[int, JsonObject]] = field(default_factory=dict)
    reviews: dict[str, dict[int, list[JsonObject]]] = field(default_factory=dict)
    issues: dict[str, dict[int, JsonObject]] = field(default_factory=dict)
    page_size: int = 100
    token_answer: JsonObject | None = None
    check_jwt: Callable[[str], bool] | None = None  # True when an App's JWT is good
    seen: list[Seen] = field(default_factory=list)
    queued: list[Queued] = field(default_factory=list)
    remaining: int = 5000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sorted: dict[tuple[str, str, str], list[JsonObject]] = field(default_factory=dict)

    def changed(self) -> None:
        """Forget the sorted lists after the held items changed."""
        self._sorted.clear()

    def queue(self, path: str, status: int, body: Any, headers: Mapping[str, str] = {}) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.queued.append(Queued(path, status, raw, dict(headers)))

    def answer(self, method: str, target: str, headers: Mapping[str, str], base: str) -> Reply:
        """The reply to `method target` (path and query) with these request headers;
        `base` is the scheme and host the Link headers point at."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        lowered = {k.lower(): v for k, v in headers.items()}
        reply = self._reply(method, parts.path, query, lowered, base)
        with self._lock:
            self.seen.append(
                Seen(
                    method,
                    parts.path,
                    query,
                    lowered.get("if-none-match"),
                    lowered.get("authorization"),
                    reply.status,
                )
            )
        return reply

    def _reply(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], base: str
    ) -> Reply:
        with self._lock:
            for number, queued in enumerate(self.queued):
                if re.search(queued.path, path):
                    del self.queued[number]
                    return Reply(queued.status, self._limits(queued.headers), queued.body)
        if method == "POST" and (found := _TOKEN.match(path)):
            return self._token(headers)
        if method != "GET":
            return _error(404, "Not Found")
        if found := _ORG_REPOS.match(path):
            return self._list(path, query, headers, base, list(self.repos))
        if found := _REPO.match(path):
            repo = [r for r in self.repos if r["full_name"] == found.group(1)]
            return (
                self._json(json.dumps(repo[0]).encode(), headers, {})
                if repo
                else _error(404, "Not Found")
            )
        if found := _PULLS.match(path):
            items = self._ordered(found.group(1), "pulls", query)
            return self._list(path, query, headers, base, items)
        if found := _PULL.match(path):
            return self._detail(found.group(1), int(found.group(2)), headers)
        if found := _REVIEWS.match(path):
            held = self.reviews.get(found.group(1), {}).get(int(found.group(2)), [])
            return self._list(path, query, headers, base, list(held))
        if found := _ISSUES.match(path):
            if found.group(1) in self._issues_off():
                return _error(410, "Issues are disabled for this repo")
            items = self._ordered(found.group(1), "issues", query)
            return self._list(path, query, headers, base, items)
        return _error(404, "Not Found")

    def _issues_off(self) -> set[str]:
        return {r["full_name"] for r in self.repos if r.get("has_issues") is False}

    def _ordered(self, repo: str, what: str, query: dict[str, str]) -> list[JsonObject]:
        """The repository's pulls or issues as the list answers them: filtered by state
        and `since`, sorted by `updated_at` (ISO strings in UTC sort as times do)."""
        state = query.get("state", "open")
        direction = query.get("direction", "desc")
        key = (repo, what, f"{state}/{direction}")
        with self._lock:
            items = self._sorted.get(key)
            if items is None:
                held = (self.pulls if what == "pulls" else self.issues).get(repo, {}).values()
                chosen = [i for i in held if state == "all" or i.get("state") == state]
                chosen.sort(key=lambda i: (i["updated_at"], i["number"]))
                items = self._sorted[key] = chosen[::-1] if direction == "desc" else chosen
        since = query.get("since")
        if since:
            items = [i for i in items if i["updated_at"] >= since]
        return items

    def _list(
        self,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        base: str,
        items: list[JsonObject],
    ) -> Reply:
        size = min(int(query.get("per_page", "30")), self.page_size, 100)
        page = max(1, int(query.get("page", "1")))
        last = max(1, -(-len(items) // size))
        body = json.dumps(items[(page - 1) * size : page * size]).encode()
        links = []
        if page < last:
            links.append(f'<{base}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}{path}?{urlencode({**query, "page": last})}>; rel="last"')
        extra = {"Link": ", ".join(links)} if links else {}
        return self._json(body, headers, extra)

    def _detail(self, repo: str, number: int, headers: dict[str, str]) -> Reply:
        detail = self.details.get(repo, {}).get(number)
        if detail is None:
            item = self.pulls.get(repo, {}).get(number)
            if item is None:
                return _error(404, "Not Found")
            detail = {**item, **DEFAULT_SIZES, "merged": item.get("merged_at") is not None}
        return self._json(json.dumps(detail).encode(), headers, {})

    def _token(self, headers: dict[str, str]) -> Reply:
        jwt = headers.get("authorization", "").removeprefix("Bearer ")
        try:
            good = self.check_jwt is not None and self.check_jwt(jwt)
        except Exception:  # a JWT the check cannot read is a bad one, as GitHub answers
            good = False
        if self.token_answer is None or not good:
            return _error(401, "A JSON web token could not be decoded")
        return Reply(201, self._limits({}), json.dumps(self.token_answer).encode())

    def _json(self, body: bytes, headers: dict[str, str], extra: Mapping[str, str]) -> Reply:
        etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        if headers.get("if-none-match") == etag:
            return Reply(304, self._limits({"ETag": etag}), b"")
        with self._lock:
            self.remaining = max(0, self.remaining - 1)
        return Reply(200, self._limits({"ETag": etag, **extra}), body)

    def _limits(self, headers: Mapping[str, str]) -> dict[str, str]:
        limits = {
            "Content-Type": "application/json; charset=utf-8",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(5000 - self.remaining),
            "x-ratelimit-resource": "core",
            "x-ratelimit-reset": "1767225600",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
        }
        return {**limits, **headers}


def _error(status: int, message: str) -> Reply:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


class _Handler(BaseHTTPRequestHandler):
    stand_in: GitHubStandIn
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY, the second waits for the
    # client's delayed ACK (40 ms a request on Linux).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve("POST")

    def _serve(self, method: str) -> None:
        host = self.headers.get("Host", "127.0.0.1")
        reply = self.stand_in.answer(method, self.path, dict(self.headers), f"http://{host}")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark's hundred thousand requests are not logged."""


@contextmanager
def serve(stand_in: GitHubStandIn, port: int = 0) -> Iterator[str]:
    """Serve the stand-in over HTTP on 127.0.0.1 in a thread; yields its base URL."""
    handler = type("Handler", (_Handler,), {"stand_in": stand_in})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
