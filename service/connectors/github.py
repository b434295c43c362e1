"""GitHub: an org's merged pull requests, the reviews people gave, and the issues they
closed, as work records (docs/connectors.md, "GitHub").

Read over the REST API through the shared SourceClient (plain httpx: service/connectors/
http.py says why), with a personal token or a GitHub App installation (github_app.py).

What a run fetches, per repository:
- pulls: GET /repos/{org}/{repo}/pulls?state=closed&sort=updated&direction=desc, walked
  down to the cursor's high-water mark. A list sorted newest first never loses an item
  that is updated while it is walked (it moves to the top, already read, and its new time
  is past the mark the run saves); a list sorted oldest first would. A walk stopped by a
  rate limit saves the range it has done, so the next run skips it instead of asking
  again for the two requests each pull request costs.
- for each merged pull request: its size (GET .../pulls/{n}: the list leaves out
  additions, deletions, changed files and commits; one request a pull request, only when
  it changed; off with FAIRDRAFT_GITHUB_PULL_SIZES=false) and its reviews
  (GET .../pulls/{n}/reviews: there is no repository-wide list of reviews). A review is
  read when its pull request merges (merging updates it), so reviews of work that was
  abandoned are not kept, and a review given earlier arrives at the merge with its own date.
- issues: GET /repos/{org}/{repo}/issues?state=all&since=MARK&sort=updated&direction=desc.
  The subject of a closed issue is its assignee: who closed it is not in the list answer
  (it would cost a request an issue), and is often not who did the work (a triager, or
  whoever merged the pull request that said "fixes #12"). One record an issue, for its
  first assignee (the others in the metadata), so that a reopened issue or one closed as
  not planned can be deleted by its id. Pull requests, which the issues list also
  returns, are left to the pulls list.
The first page of each list is asked with the ETag it had last time: an unchanged list
answers 304, which costs nothing against the quota. So is the org's list of repositories
(when it is one page) or each allow-listed repository (which tells whether its issues are
turned off: their list would answer 410).

People are named by login (the identities CSV and the HR page match logins; the API
gives an email only when the person made it public). A numeric id would survive a rename,
but nobody in HR knows it; a renamed person shows up as a new unmatched login on the HR
page rather than being silently matched to anyone. Bots (type "Bot", or a login ending
"[bot]") and deleted accounts are skipped with their reason.

`complete_on_full`: a full run lists every pull request and issue of every repository
read, so one it did not yield is gone from GitHub (an issue deleted by an admin or
transferred, a repository deleted or taken off the allow-list, a pull request now from a
bot) and its record goes too. Pull requests and submitted reviews cannot be deleted in
GitHub itself; an issue can. Incremental runs cannot see a deletion (a deleted item is in
no list); they follow edits (a changed title or description updates the item, which comes
back as updated), reopened issues and issues closed as not planned (deleted here).
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.errors import Unavailable
from service.connectors.github_app import AppCredentials, InstallationAuth
from service.connectors.github_text import bound, summarise
from service.connectors.http import Answer, SourceClient, SourceFailed
from service.connectors.model import (
    Batch,
    Cursor,
    Identity,
    Json,
    Skipped,
    Sleeper,
    SourceRecord,
    WaitObserver,
)
from service.settings import Settings

SYSTEM = "github"
PER_PAGE = 100
API_VERSION = "2022-11-28"
TITLE_CHARS = 300
REVIEW_WORDS = {
    "APPROVED": "approved it",
    "CHANGES_REQUESTED": "asked for changes",
    "COMMENTED": "commented",
    "DISMISSED": "review later dismissed",
}
BOT = "a bot's {what}"
GHOST = "{what} of a deleted account"
CLOSED_UNMERGED = "a pull request closed without merging"
NOT_PLANNED = "an issue closed as not planned"
NO_ASSIGNEE = "a closed issue with no assignee"
OWN_REVIEW = "a review of one's own pull request"
GHOST_USER = ("ghost", 10137)  # who GitHub shows in place of a deleted account


# The shapes read from GitHub's answers (docs.github.com/en/rest: pulls, reviews, issues,
# repos); fields not listed are ignored.
class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Shape):
    login: str
    id: int
    type: str = "User"
    email: str | None = None

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")

    def identity(self) -> Identity:
        return Identity(SYSTEM, self.login, display_name=self.login, email=self.email or None)


class Label(_Shape):
    name: str


class Pull(_Shape):
    number: int
    title: str
    body: str | None = None
    user: User | None
    html_url: str
    state: str
    merged_at: datetime | None = None
    updated_at: datetime
    labels: list[Label | str] = []
    additions: int | None = None
    deletions: int | None = None
    changed_files: int | None = None
    commits: int | None = None


class Review(_Shape):
    id: int
    user: User | None
    body: str | None = None
    state: str
    html_url: str
    submitted_at: datetime | None = None


class Issue(_Shape):
    number: int
    title: str
    body: str | None = None
    user: User | None = None
    assignee: User | None = None
    assignees: list[User] | None = None
    state: str
    state_reason: str | None = None
    closed_at: datetime | None = None
    updated_at: datetime
    html_url: str
    labels: list[Label | str] = []
    pull_request: dict[str, Any] | None = None


class Repo(_Shape):
    name: str
    full_name: str
    has_issues: bool = True


# The cursor: per repository and list, the high-water mark, the first page's ETag, and
# the range done of a walk that stopped.
class Walk(BaseModel):
    top: datetime
    below: datetime


class ListCursor(BaseModel):
    mark: datetime | None = None
    etag: str | None = None
    etag_for: str | None = None  # the first page's query the ETag answered
    walk: Walk | None = None


class RepoCursor(BaseModel):
    pulls: ListCursor = Field(default_factory=ListCursor)
    issues: ListCursor = Field(default_factory=ListCursor)
    has_issues: bool = True  # a repository with issues turned off answers its list 410
    etag: str | None = None  # of GET /repos/{org}/{repo}, for an allow-listed one


class GitHubCursor(BaseModel):
    repos: dict[str, RepoCursor] = Field(default_factory=dict)
    listed: list[str] = Field(default_factory=list)  # the org's repositories, last listed
    listed_etag: str | None = None  # the listing's ETag, when it was one page

    @classmethod
    def of(cls, cursor: Cursor) -> "GitHubCursor":
        """The stored cursor; one that does not read (an older shape) starts afresh."""
        try:
            return cls.model_validate(cursor)
        except ValidationError:
            return cls()

    def dump(self) -> Cursor:
        dumped: Cursor = self.model_dump(mode="json", exclude_defaults=True)
        return dumped


@dataclass
class _Page:
    """What one page of a list gave, before its batch is cut."""

    records: list[SourceRecord] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    fetched: int = 0
    newest: datetime | None = None  # the latest updated_at read

    def add(self, other: "_Page") -> None:
        self.records += other.records
        self.deleted += other.deleted
        self.skipped += other.skipped
        self.fetched += other.fetched

    def batch(self, cursor: Cursor) -> Batch:
        return Batch(
            cursor=cursor,
            records=self.records,
            deleted=self.deleted,
            skipped=self.skipped,
            fetched=self.fetched,
        )


@dataclass
class GitHubConnector:
    """The GitHub connector: `client` opens a SourceClient on the API telling `waits`."""

    org: str
    repos: list[str]
    client: Callable[[WaitObserver], SourceClient]
    pull_sizes: bool = True
    summary_chars: int = 2000
    # Records a batch holds at least (pages are added until it does): fewer, larger writes.
    # A run the source stops (a pause, an error) hands over the pages read whole first; only
    # a crashed process re-reads up to one batch.
    batch_records: int = 1000

    @property
    def name(self) -> str:
        return "github"

    @property
    def system(self) -> str:
        return SYSTEM

    @property
    def complete_on_full(self) -> bool:
        return True

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        state = GitHubCursor.of({} if full else cursor)
        with self.client(waits) as client:
            for repo in self._repositories(client, state):
                repo_state = state.repos.setdefault(repo, RepoCursor())
                yield from self._walk(client, state, repo, repo_state.pulls, "pulls")
                if repo_state.has_issues:
                    yield from self._walk(client, state, repo, repo_state.issues, "issues")

    def _repositories(self, client: SourceClient, state: "GitHubCursor") -> list[str]:
        """The org's repositories read: the allow-list, or every one the token sees. A
        listing of one page is asked with its ETag (newest first, so a new repository
        changes the first page); a longer one is read whole each run. An allow-listed
        repository is asked for itself (with its ETag: free when unchanged), so that a
        name that does not exist fails the run by name, and issues turned off are known."""
        if self.repos:
            return [self._repository(client, state, name) for name in self.repos]
        url = f"/orgs/{self.org}/repos"
        params: dict[str, str | int] = {"per_page": PER_PAGE, "sort": "created"}
        answer = client.get(url, params=params, etag=state.listed_etag)
        if answer.status == 304:
            return list(state.listed)
        repos = _parse(_REPOS, answer, "repositories")
        single = "next" not in answer.links
        while (next_url := answer.links.get("next")) is not None:
            answer = client.get(next_url)
            more: list[Repo] = _parse(_REPOS, answer, "repositories")
            repos += more
        for repo in repos:
            state.repos.setdefault(repo.full_name, RepoCursor()).has_issues = repo.has_issues
        state.listed = sorted({repo.full_name for repo in repos})
        state.listed_etag = answer.etag if single else None
        return list(state.listed)

    def _repository(self, client: SourceClient, state: "GitHubCursor", name: str) -> str:
        full_name = f"{self.org}/{name}"
        repo_state = state.repos.setdefault(full_name, RepoCursor())
        answer = client.get(f"/repos/{full_name}", etag=repo_state.etag)
        if answer.status != 304:
            repo_state.has_issues = _parse(_REPO, answer, f"repository {full_name}").has_issues
            repo_state.etag = answer.etag
        return full_name

    def _walk(
        self,
        client: SourceClient,
        state: GitHubCursor,
        repo: str,
        cursor: ListCursor,
        what: Literal["pulls", "issues"],
    ) -> Iterator[Batch]:
        """One list of one repository, newest first, down to the mark, in batches of at
        least `batch_records` records, the last one ending at the new mark. A run stopped by
        the source (a rate limit past the longest wait, an error) first hands over the pages
        it has read whole, so the next run starts after them."""
        params: dict[str, str | int] = {
            "state": "closed" if what == "pulls" else "all",
            "sort": "updated",
            "direction": "desc",
            "per_page": PER_PAGE,
        }
        if what == "issues" and cursor.mark is not None:
            params["since"] = _iso(cursor.mark)
        query = urlencode(params)
        resumed = cursor.walk
        etag = cursor.etag if resumed is None and cursor.etag_for == query else None
        answer = client.get(f"/repos/{repo}/{what}", params=params, etag=etag)
        if answer.status == 304:
            return
        first_etag = answer.etag
        top = resumed.top if resumed else cursor.mark
        pending = _Page()
        try:
            while True:
                page = _Page()
                below, stop = self._read(client, repo, what, answer, cursor.mark, resumed, page)
                top = max(top, page.newest) if top and page.newest else top or page.newest
                next_url = None if stop else answer.links.get("next")
                if next_url is None:
                    cursor.mark, cursor.walk = top, None
                    cursor.etag, cursor.etag_for = first_etag, query
                elif below is not None and top is not None:
                    cursor.walk = Walk(top=top, below=below)
                pending.add(page)
                if next_url is None or len(pending.records) >= self.batch_records:
                    yield pending.batch(state.dump())
                    pending = _Page()
                if next_url is None:
                    return
                answer = client.get(next_url)
        except Unavailable:
            if pending.fetched:
                yield pending.batch(state.dump())
            raise

    def _read(
        self,
        client: SourceClient,
        repo: str,
        what: str,
        answer: Answer,
        mark: datetime | None,
        resumed: Walk | None,
        page: _Page,
    ) -> tuple[datetime | None, bool]:
        """One page's items into `page`: the oldest time read, and whether the walk reached
        the mark."""
        below: datetime | None = None
        for item in self._items(answer, repo, what):
            moment = item.updated_at
            if mark is not None and moment < mark:
                return below, True
            if resumed is not None and resumed.below < moment <= resumed.top:
                continue  # read before the run that stopped
            self._item(client, repo, item, page)
            page.newest = moment if page.newest is None else max(page.newest, moment)
            below = moment
        return below, False

    def _items(self, answer: Answer, repo: str, what: str) -> list[Pull] | list[Issue]:
        if what == "pulls":
            return _parse(_PULLS, answer, f"pull requests of {repo}")
        return _parse(_ISSUES, answer, f"issues of {repo}")

    def _item(self, client: SourceClient, repo: str, item: Pull | Issue, page: _Page) -> None:
        if isinstance(item, Pull):
            self._pull(client, repo, item, page)
        elif item.pull_request is None:  # pull requests come from the pulls list
            page.fetched += 1
            self._issue(repo, item, page)

    def _pull(self, client: SourceClient, repo: str, pull: Pull, page: _Page) -> None:
        page.fetched += 1
        key = f"pr:{repo}#{pull.number}"
        user, merged_at = pull.user, pull.merged_at
        reason = _user_problem(user, "pull request")
        if reason is None and merged_at is None:
            reason = CLOSED_UNMERGED
        if reason is not None or user is None or merged_at is None:
            page.skipped.append(Skipped(key, reason or CLOSED_UNMERGED))
            return
        if self.pull_sizes:
            path = f"/repos/{repo}/pulls/{pull.number}"
            pull = _parse(_PULL, client.get(path), f"pull request {repo}#{pull.number}")
        page.records.append(self._pull_record(repo, pull, user, merged_at))
        for answer in client.pages(
            f"/repos/{repo}/pulls/{pull.number}/reviews", params={"per_page": PER_PAGE}
        ):
            for review in _parse(_REVIEWS, answer, f"reviews of {repo}#{pull.number}"):
                page.fetched += 1
                self._review(repo, pull, review, page)

    def _pull_record(self, repo: str, pull: Pull, user: User, merged_at: datetime) -> SourceRecord:
        size = {
            "additions": pull.additions,
            "deletions": pull.deletions,
            "changed_files": pull.changed_files,
            "commits": pull.commits,
        }
        lines = [f"Merged a pull request in {repo}: {_title(pull.title)}."]
        lines += _paragraph(summarise(pull.body, self.summary_chars))
        if pull.additions is not None and pull.deletions is not None:
            lines.append(
                f"Size: +{pull.additions} -{pull.deletions} lines"
                + (f" in {pull.changed_files} files" if pull.changed_files is not None else "")
                + (f", {pull.commits} commits." if pull.commits is not None else ".")
            )
        metadata: dict[str, Json] = {
            "type": "pull_request",
            "repo": repo,
            "number": pull.number,
            "url": pull.html_url,
            "labels": _labels(pull.labels),
        }
        metadata.update({k: v for k, v in size.items() if v is not None})
        return SourceRecord(
            external_id=f"pr:{repo}#{pull.number}",
            kind="work_record",
            subject=user.identity(),
            author=user.identity(),
            occurred_at=merged_at,
            title=_title(pull.title),
            body="\n\n".join(lines),
            metadata=metadata,
        )

    def _review(self, repo: str, pull: Pull, review: Review, page: _Page) -> None:
        key = f"review:{repo}#{pull.number}/{review.id}"
        if review.state == "PENDING" or review.submitted_at is None:
            return  # a draft only its writer sees: not given yet
        reason = _user_problem(review.user, "review")
        own = review.user is not None and pull.user is not None and review.user.id == pull.user.id
        if reason is None and own:
            reason = OWN_REVIEW
        if reason is not None or review.user is None:
            page.skipped.append(Skipped(key, reason or GHOST.format(what="a review")))
            return
        word = REVIEW_WORDS.get(review.state, review.state.lower())
        author = pull.user.login if pull.user else "a deleted account"
        lines = [f"Reviewed a pull request by {author} in {repo}: {_title(pull.title)} ({word})."]
        lines += _paragraph(summarise(review.body, self.summary_chars))
        page.records.append(
            SourceRecord(
                external_id=key,
                kind="work_record",
                subject=review.user.identity(),
                author=review.user.identity(),
                occurred_at=review.submitted_at,
                title=_title(f"Review: {pull.title}"),
                body="\n\n".join(lines),
                metadata={
                    "type": "review",
                    "repo": repo,
                    "number": pull.number,
                    "state": review.state,
                    "url": review.html_url,
                    "pull_url": pull.html_url,
                },
            )
        )

    def _issue(self, repo: str, issue: Issue, page: _Page) -> None:
        key = f"issue:{repo}#{issue.number}"
        if issue.state != "closed" or issue.closed_at is None:
            page.deleted.append(key)  # reopened (or never closed): not done work
            return
        if issue.state_reason not in (None, "completed"):
            page.deleted.append(key)
            page.skipped.append(Skipped(key, NOT_PLANNED))
            return
        assignees = issue.assignees or ([issue.assignee] if issue.assignee else [])
        people = [user for user in assignees if not user.is_bot]
        if not people:
            reason = BOT.format(what="issue") if assignees else NO_ASSIGNEE
            page.deleted.append(key)
            page.skipped.append(Skipped(key, reason))
            return
        subject = people[0]
        lines = [f"Closed an issue in {repo}: {_title(issue.title)}."]
        lines += _paragraph(summarise(issue.body, self.summary_chars))
        page.records.append(
            SourceRecord(
                external_id=key,
                kind="work_record",
                subject=subject.identity(),
                author=subject.identity(),
                occurred_at=issue.closed_at,
                title=_title(issue.title),
                body="\n\n".join(lines),
                metadata={
                    "type": "issue",
                    "repo": repo,
                    "number": issue.number,
                    "url": issue.html_url,
                    "labels": _labels(issue.labels),
                    "assignees": [user.login for user in people],
                },
            )
        )


_PULLS = TypeAdapter(list[Pull])
_PULL = TypeAdapter(Pull)
_REVIEWS = TypeAdapter(list[Review])
_ISSUES = TypeAdapter(list[Issue])
_REPOS = TypeAdapter(list[Repo])
_REPO = TypeAdapter(Repo)
Parsed = TypeVar("Parsed")


def _parse(adapter: TypeAdapter[Parsed], answer: Answer, what: str) -> Parsed:
    """The answer in GitHub's shape, or a failed run that says what was malformed (the
    place and the kind of fault, never the answer's text)."""
    try:
        return adapter.validate_python(answer.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise SourceFailed(
            f"github answered a page of {what} that is not in GitHub's shape "
            f"({where}: {first['type']})",
            field="answer",
        ) from None


def _user_problem(user: User | None, what: str) -> str | None:
    if user is None or (user.login, user.id) == GHOST_USER:
        return GHOST.format(what=f"a {what}")
    if user.is_bot:
        return BOT.format(what=what)
    return None


def _title(title: str) -> str:
    return bound(" ".join(title.split()), TITLE_CHARS)


def _paragraph(text: str) -> list[str]:
    return [text] if text else []


def _labels(labels: list[Label | str]) -> list[Json]:
    names: list[Json] = [label if isinstance(label, str) else label.name for label in labels]
    return names[:20]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def from_settings(
    settings: Settings,
    *,
    sleeper: Sleeper = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> GitHubConnector | None:
    """The connector the settings describe, or None when FAIRDRAFT_GITHUB_ORG is unset."""
    if settings.github_org is None:
        return None
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": "fairdraft",
    }
    api_url = settings.github_api_url.rstrip("/")
    credentials: AppCredentials | None = None
    if settings.github_token is not None:
        headers["Authorization"] = f"Bearer {settings.github_token.get_secret_value()}"
    else:
        assert settings.github_app_id is not None  # the settings' validator saw to it
        assert settings.github_app_private_key_file is not None
        assert settings.github_app_installation_id is not None
        credentials = AppCredentials(
            app_id=settings.github_app_id,
            private_key_file=settings.github_app_private_key_file,
            installation_id=settings.github_app_installation_id,
            api_url=api_url,
            headers=headers,
            sleeper=sleeper,
            transport=transport,
        )

    def client(waits: WaitObserver) -> SourceClient:
        chosen = transport
        if credentials is not None:
            credentials.waits = waits
            chosen = InstallationAuth(credentials, transport or httpx.HTTPTransport())
        return SourceClient(
            "github",
            api_url,
            headers=headers,
            sleeper=sleeper,
            waits=waits,
            max_wait_s=settings.connector_max_wait_s,
            transport=chosen,
        )

    return GitHubConnector(
        org=settings.github_org,
        repos=list(settings.github_repos),
        client=client,
        pull_sizes=settings.github_pull_sizes,
        summary_chars=settings.github_summary_chars,
    )
