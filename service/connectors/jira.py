"""Jira Cloud: issues done by their assignee, as work records about that assignee.

Read through the enhanced JQL search, GET /rest/api/3/search/jql, paged by
`nextPageToken`: the endpoint Jira Cloud documents now (the older /rest/api/3/search,
paged by startAt, was removed in 2025: developer.atlassian.com/changelog/#CHANGE-2046).
Each run asks for what was updated since its cursor, a few minutes earlier (JQL's dates
are to the minute and read in the account's own time zone, which /myself tells), oldest
first, so every page ends at a cursor a paused run resumes from.

An issue that was done and is no longer (reopened) is deleted here: its record says the
work was completed, which is no longer true; when it is done again it comes back with its
new resolution date. Keeping it would claim the same work twice, or work QA sent back.
Issues deleted in Jira go on a full run (`fairdraft sync jira --full`), whose records not
seen are swept.
"""

import base64
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from service.connectors.adf import adf_to_text
from service.connectors.http import SourceClient, SourceFailed
from service.connectors.model import (
    Batch,
    Connector,
    Cursor,
    Identity,
    Json,
    Skipped,
    Sleeper,
    SourceRecord,
    WaitObserver,
)
from service.settings import Settings

SEARCH_PATH = "/rest/api/3/search/jql"
MYSELF_PATH = "/rest/api/3/myself"
PAGE_SIZE = 100
MAX_LABELS = 20
_BASE_FIELDS = (
    "summary",
    "description",
    "assignee",
    "status",
    "resolution",
    "resolutiondate",
    "statuscategorychangedate",
    "updated",
    "project",
    "issuetype",
    "parent",
    "labels",
)


class _Shape(BaseModel):
    """Jira's answers carry far more than we read; what we read must have its type."""

    model_config = ConfigDict(extra="ignore")


class JiraUser(_Shape):
    accountId: str = Field(min_length=1, max_length=128)
    displayName: str | None = None
    emailAddress: str | None = None  # hidden by most sites' privacy settings
    accountType: str | None = None  # atlassian, app, customer


class StatusCategory(_Shape):
    key: str


class Status(_Shape):
    name: str | None = None
    statusCategory: StatusCategory


class Named(_Shape):
    name: str | None = None


class Project(_Shape):
    key: str
    name: str | None = None


class IssueType(_Shape):
    name: str | None = None
    hierarchyLevel: int | None = None


class ParentFields(_Shape):
    summary: str | None = None
    issuetype: IssueType | None = None


class Parent(_Shape):
    key: str
    fields: ParentFields | None = None


class IssueFields(_Shape):
    """An issue's fields; custom ones (story points, epic link) stay in model_extra."""

    model_config = ConfigDict(extra="allow")

    summary: str = ""
    description: object = None  # ADF (a JSON tree), walked by adf.py
    assignee: JiraUser | None = None
    status: Status
    resolution: Named | None = None
    resolutiondate: datetime | None = None
    statuscategorychangedate: datetime | None = None
    updated: datetime
    project: Project | None = None
    issuetype: IssueType | None = None
    parent: Parent | None = None
    labels: list[str] = Field(default_factory=list)

    @field_validator("summary", "labels", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object, info: ValidationInfo) -> object:
        """Jira sends null for an empty summary or label list on some issue types."""
        if value is None:
            return "" if info.field_name == "summary" else []
        return value

    @field_validator("resolutiondate", "statuscategorychangedate", "updated", mode="before")
    @classmethod
    def _jira_time(cls, value: object) -> object:
        """Jira writes offsets without a colon (2026-11-30T14:05:12.345+0100)."""
        return parse_jira_time(value) if isinstance(value, str) else value


class Issue(_Shape):
    id: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=64)
    fields: IssueFields


class SearchPage(_Shape):
    issues: list[Issue] = Field(default_factory=list)
    nextPageToken: str | None = None
    isLast: bool | None = None


def parse_jira_time(value: str) -> datetime:
    """A Jira timestamp as an aware datetime (ISO 8601, offset with or without a colon)."""
    text = value.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class JiraConnector:
    """Done issues of the configured projects (or all the account sees)."""

    name = "jira"
    system = "jira"
    complete_on_full = True  # a full run yields every done issue: the rest went

    def __init__(
        self,
        settings: Settings,
        *,
        sleeper: Sleeper = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if settings.jira_url is None:
            raise ValueError("the Jira connector needs FAIRDRAFT_JIRA_URL")
        self.site = settings.jira_url.rstrip("/")
        self.headers = _auth_headers(settings)
        self.projects = tuple(settings.jira_projects)
        self.story_points_field = settings.jira_story_points_field
        self.epic_link_field = settings.jira_epic_link_field
        self.overlap = timedelta(minutes=settings.jira_overlap_minutes)
        self.max_wait_s = settings.connector_max_wait_s
        self.sleeper = sleeper
        self.transport = transport

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        since = None if full else _cursor_time(cursor)
        with SourceClient(
            "jira",
            self.site,
            headers=self.headers,
            sleeper=self.sleeper,
            waits=waits,
            max_wait_s=self.max_wait_s,
            transport=self.transport,
        ) as client:
            if since is None:
                jql = self.jql(None, ZoneInfo("UTC"))
            else:
                jql = self.jql(since - self.overlap, _zone(client))
            high = since
            token: str | None = None
            tokens: set[str] = set()
            while True:
                page = self._page(client, jql, token)
                batch, high = self._batch(page, high)
                yield batch
                token = page.nextPageToken
                if not token or page.isLast or not page.issues:
                    return
                if token in tokens:
                    raise SourceFailed(
                        "jira gave the same nextPageToken twice: the run stops rather than loop",
                        field="connection",
                    )
                tokens.add(token)

    def jql(self, since: datetime | None, zone: ZoneInfo) -> str:
        """The search: done issues (and, since a time, those whose status changed, to see
        reopened ones), oldest update first. Project keys were checked by Settings."""
        clauses: list[str] = []
        if self.projects:
            clauses.append("project in (" + ", ".join(f'"{k}"' for k in self.projects) + ")")
        if since is None:
            clauses.append("statusCategory = Done")
        else:
            local = since.astimezone(zone).strftime("%Y/%m/%d %H:%M")
            clauses.append(f'updated >= "{local}"')
            clauses.append(f'(statusCategory = Done OR status CHANGED AFTER "{local}")')
        return " AND ".join(clauses) + " ORDER BY updated ASC"

    def _fields(self) -> str:
        extra = [self.story_points_field]
        if self.epic_link_field:
            extra.append(self.epic_link_field)
        return ",".join((*_BASE_FIELDS, *extra))

    def _page(self, client: SourceClient, jql: str, token: str | None) -> SearchPage:
        params: dict[str, str | int] = {"jql": jql, "maxResults": PAGE_SIZE}
        params["fields"] = self._fields()
        if token:
            params["nextPageToken"] = token
        answer = client.get(SEARCH_PATH, params=params)
        try:
            return SearchPage.model_validate(answer.data)
        except ValidationError as exc:
            raise SourceFailed(
                f"jira answered a search page not shaped as Jira's: {_where(exc)}",
                field="connection",
            ) from None

    def _batch(self, page: SearchPage, high: datetime | None) -> tuple[Batch, datetime | None]:
        batch = Batch(cursor={}, fetched=len(page.issues))
        for issue in page.issues:
            high = issue.fields.updated if high is None else max(high, issue.fields.updated)
            self._add(batch, issue)
        batch.cursor = {"updated": high.isoformat()} if high is not None else {}
        return batch, high

    def _add(self, batch: Batch, issue: Issue) -> None:
        external_id = f"issue:{issue.id}"
        fields = issue.fields
        if fields.status.statusCategory.key != "done":
            batch.deleted.append(external_id)  # reopened, or never done: nothing to keep
            return
        assignee = fields.assignee
        if assignee is None:
            batch.skipped.append(Skipped(external_id, "a done issue with no assignee"))
            return
        if assignee.accountType == "app":
            batch.skipped.append(Skipped(external_id, "an app's (automation) issue"))
            return
        batch.records.append(self.record(issue, assignee))

    def record(self, issue: Issue, assignee: JiraUser) -> SourceRecord:
        fields = issue.fields
        text = adf_to_text(fields.description)
        return SourceRecord(
            external_id=f"issue:{issue.id}",
            kind="work_record",
            subject=Identity(
                system="jira",
                external_id=assignee.accountId,
                display_name=assignee.displayName,
                email=assignee.emailAddress,
            ),
            occurred_at=fields.resolutiondate or fields.statuscategorychangedate or fields.updated,
            title=f"{issue.key}: {fields.summary}".strip(),
            body=text or fields.summary,
            metadata=self.metadata(issue),
        )

    def metadata(self, issue: Issue) -> dict[str, Json]:
        """Small facts drafting may cite: where it is, how big, which epic."""
        fields = issue.fields
        extra: Mapping[str, object] = fields.model_extra or {}
        meta: dict[str, Json] = {
            "key": issue.key,
            "url": f"{self.site}/browse/{issue.key}",
            "status": fields.status.name,
        }
        if fields.project is not None:
            meta["project"] = fields.project.key
        if fields.issuetype is not None and fields.issuetype.name:
            meta["issue_type"] = fields.issuetype.name
        if fields.resolution is not None and fields.resolution.name:
            meta["resolution"] = fields.resolution.name
        if fields.labels:
            meta["labels"] = [label[:100] for label in fields.labels[:MAX_LABELS]]
        points = extra.get(self.story_points_field)
        if isinstance(points, int | float) and not isinstance(points, bool):
            meta["story_points"] = points
        epic = _epic(fields.parent, extra.get(self.epic_link_field or ""))
        if epic is not None:
            meta["epic"] = epic
        if fields.parent is not None:
            meta["parent"] = fields.parent.key
        return meta


def _epic(parent: Parent | None, epic_link: object) -> dict[str, Json] | None:
    """The issue's epic: its parent when that is an epic (hierarchy level 1), else the
    older Epic Link field's key."""
    if parent is not None and parent.fields is not None and parent.fields.issuetype is not None:
        kind = parent.fields.issuetype
        if kind.hierarchyLevel == 1 or (kind.name or "").lower() == "epic":
            return {"key": parent.key, "summary": parent.fields.summary}
    if isinstance(epic_link, str) and epic_link:
        return {"key": epic_link[:64]}
    return None


def _auth_headers(settings: Settings) -> dict[str, str]:
    """Basic (email and API token) or bearer (OAuth 2.0): Jira Cloud's two ways in."""
    headers = {"Accept": "application/json"}
    if settings.jira_bearer_token is not None:
        headers["Authorization"] = f"Bearer {settings.jira_bearer_token.get_secret_value()}"
    elif settings.jira_email is not None and settings.jira_api_token is not None:
        pair = f"{settings.jira_email}:{settings.jira_api_token.get_secret_value()}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return headers


def _zone(client: SourceClient) -> ZoneInfo:
    """The account's time zone, in which Jira reads JQL's dates; UTC when it says none."""
    data = client.get(MYSELF_PATH).data
    name = data.get("timeZone") if isinstance(data, dict) else None
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _cursor_time(cursor: Cursor) -> datetime | None:
    value = cursor.get("updated")
    if not isinstance(value, str):
        return None
    try:
        return parse_jira_time(value)
    except ValueError:
        return None  # a cursor we cannot read: read everything again, idempotently


def _where(exc: ValidationError) -> str:
    """Where a page was malformed (locations and reasons only, never the source's text)."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "the page"
    return f"{location}: {first['type']} ({exc.error_count()} problem(s))"


def from_settings(
    settings: Settings,
    *,
    sleeper: Sleeper = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> Connector | None:
    """The Jira connector, or None when FAIRDRAFT_JIRA_URL is unset."""
    if settings.jira_url is None:
        return None
    return JiraConnector(settings, sleeper=sleeper, transport=transport)
