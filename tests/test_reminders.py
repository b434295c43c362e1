"""Reminders (issue 16) against a real SMTP server the test starts (aiosmtpd) and a local
HTTP receiver for Slack and Teams webhooks: one message per due task per rule across runs
and a worker restart, the manager's digest, muting, a mail server that is down, and
hostile names escaped in every format.

The company is tests/cycle_org.py's, its 2026-H1 cycle started. On NOW (2026-07-21, in
Lisbon too) the self-reflection phase (due 07-10) is over: its 14 open tasks are overdue
(six self-reflections, four nominations (Mia and Hana have no manager to approve a list),
Mia's three approvals and Al's one); with "due
soon" 3 days, the four manager feedbacks (due 07-24: Mia's for Al, Bea and Cal, Al's for
Ned) are due soon; Mia (Al, Bea, Cal overdue) and Al (Ned) get a digest.
"""

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update
from typer.testing import CliRunner

from domain.reminders import Channel, MessageStatus, ReminderRule
from service.app import create_app
from service.cli import app as cli_app
from service.cycles.reminder_pass import PassSummary, pick, run_pass
from service.cycles.reminders import (
    ReminderSettingsIn,
    claim_due,
    reminder_settings,
    set_reminder_settings,
)
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.db.models import AuditEvent, Person, Reminder
from service.metrics import process_metrics
from service.settings import Settings, get_settings
from tests.cycle_org import PERIOD, CycleOrg, build_cycle_org, setup_body, start_cycle_org
from tests.reminder_servers import HookServer, MailServer, Received
from tests.test_jobs import run_periodic, running_worker

NOW = datetime(2026, 7, 21, 12, 0, tzinfo=UTC)
OVERDUE_SELF = 14  # the self-reflection phase's tasks
DUE_SOON = 4  # manager feedback: Mia's three, Al's one
DIGESTS = 2  # Mia, Al
HOSTILE = '<script>alert(1)</script> "Q" & <!channel> *b* [x](https://evil.example) }"]'


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    org = build_cycle_org(engine)
    with engine.begin() as conn:
        create_cycle(conn, PERIOD, CycleSetupIn.model_validate(setup_body()), actor="t")
        start_cycle(conn, PERIOD.name, actor="t")
    return org


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    server.start()
    yield server
    server.stop()


def mail_settings(settings: Settings, smtp: MailServer, **more: object) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_sender": "reviews@fairdraft.example",
            "public_url": "https://fairdraft.example",
            "smtp_timeout_s": 5.0,
            **more,
        }
    )


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Reminder.status, func.count()).group_by(Reminder.status))
        return Counter({status: int(n) for status, n in rows})


def by_rule(received: list[Received]) -> Counter[str]:
    """Emails by rule, told by their subject line."""
    found: Counter[str] = Counter()
    for mail in received:
        subject = str(mail.message["Subject"])
        rule = (
            "digest"
            if subject.startswith("Your team")
            else "overdue"
            if subject.startswith("Overdue")
            else "due_soon"
        )
        found[rule] += 1
    return found


def test_each_due_task_gets_one_message_per_rule_across_runs(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp)
    first = run_pass(engine, config, now=NOW)
    assert sum(c.count for c in first.claimed) == OVERDUE_SELF + DUE_SOON + DIGESTS
    assert first.outcomes[Channel.EMAIL].sent == OVERDUE_SELF + DUE_SOON + DIGESTS
    assert by_rule(smtp.received) == {
        "overdue": OVERDUE_SELF,
        "due_soon": DUE_SOON,
        "digest": DIGESTS,
    }
    ids = [m.message_id for m in smtp.received]
    assert len(set(ids)) == len(ids)
    # A second run, the same day: nothing new, nothing sent twice.
    second = run_pass(engine, config, now=NOW + timedelta(hours=1))
    assert second.claimed == [] and second.outcomes[Channel.EMAIL].sent == 0
    assert len(smtp.received) == OVERDUE_SELF + DUE_SOON + DIGESTS
    # The next day: the digests again (once a day), no nudge repeated.
    third = run_pass(engine, config, now=NOW + timedelta(days=1))
    assert [(c.rule, c.count) for c in third.claimed] == [(ReminderRule.DIGEST, DIGESTS)]
    # Past the manager review's due day (07-24): the due-soon ones are overdue, told once more.
    fourth = run_pass(engine, config, now=NOW + timedelta(days=4))
    overdue = {c.rule: c.count for c in fourth.claimed}
    assert overdue == {ReminderRule.OVERDUE: DUE_SOON, ReminderRule.DIGEST: DIGESTS}
    assert statuses(engine) == {"sent": len(smtp.received)}
    assert all(m.to == [m.message["To"]] for m in smtp.received)


def test_two_claims_at_once_and_a_restarted_worker_send_each_message_once(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp)
    with engine.begin() as conn:
        claimed = claim_due(conn, config, now=NOW)
        again = claim_due(conn, config, now=NOW)  # a second worker, the same tick
    assert sum(c.count for c in claimed) == OVERDUE_SELF + DUE_SOON + DIGESTS
    assert again == []
    # A worker holds five rows and stops before sending them (killed).
    with engine.begin() as conn:
        lost = pick(conn, Channel.EMAIL, now=NOW, lease=timedelta(minutes=10), limit=5)
    assert len(lost) == 5
    # A new worker's pass inside the lease leaves them alone and sends the rest.
    run_pass(engine, config, now=NOW + timedelta(minutes=1))
    assert len(smtp.received) == OVERDUE_SELF + DUE_SOON + DIGESTS - 5
    assert statuses(engine) == {"sent": len(smtp.received), "sending": 5}
    # Past the lease they are sent, each once, and the whole set is one message apiece.
    run_pass(engine, config, now=NOW + timedelta(seconds=config.reminder_lease_s + 61))
    ids = Counter(m.message_id for m in smtp.received)
    assert len(ids) == OVERDUE_SELF + DUE_SOON + DIGESTS and set(ids.values()) == {1}
    assert statuses(engine) == {"sent": len(ids)}


def test_two_workers_passing_at_once_send_each_message_once(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp)
    summaries: list[PassSummary] = []
    workers = [
        threading.Thread(target=lambda: summaries.append(run_pass(engine, config, now=NOW)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(summaries) == 2
    total = OVERDUE_SELF + DUE_SOON + DIGESTS
    assert sum(c.count for s in summaries for c in s.claimed) == total
    assert sum(s.outcomes[Channel.EMAIL].sent for s in summaries) == total
    ids = Counter(m.message_id for m in smtp.received)
    assert len(ids) == total and set(ids.values()) == {1}


def test_a_message_sent_but_not_marked_goes_again_with_the_same_message_id(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    """The worker died between the server's 250 and the row's mark: the resend carries the
    same Message-ID, so the receiving side can drop the copy."""
    config = mail_settings(settings, smtp)
    run_pass(engine, config, now=NOW)
    first = {m.message_id for m in smtp.received}
    with engine.begin() as conn:
        one = conn.execute(select(func.min(Reminder.id))).scalar_one()
        conn.execute(
            update(Reminder).where(Reminder.id == one).values(status="sending", claimed_at=NOW)
        )
    run_pass(engine, config, now=NOW + timedelta(seconds=config.reminder_lease_s + 1))
    ids = Counter(m.message_id for m in smtp.received)
    assert set(ids) == first
    assert sorted(ids.values())[-1] == 2 and sum(ids.values()) == len(first) + 1
    assert f"<fairdraft-reminder-{one}@fairdraft.example>" in ids


def test_the_digest_names_the_managers_overdue_reports_and_nobody_else(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    run_pass(engine, mail_settings(settings, smtp), now=NOW)
    digests = {
        m.to[0]: m for m in smtp.received if str(m.message["Subject"]).startswith("Your team")
    }
    assert set(digests) == {"mia@example.com", "al@example.com"}
    mia = digests["mia@example.com"]
    text, page = mia.part("plain"), mia.part("html")
    for report in ("Al Reyes", "Bea Ross", "Cal Ibsen"):
        assert f"{report}: write their self-reflection (2026-H1) was due on 2026-07-10" in text
        assert f"{report}: nominate their peers (2026-H1)" in text
        assert report in page
    for other in ("Ned Park", "Hana Kim", "Jo Tanaka", "Mia Stone:"):
        assert other not in text and other not in page
    assert (
        "https://fairdraft.example/team" in text and 'href="https://fairdraft.example/team"' in page
    )
    al = digests["al@example.com"].part("plain")
    assert "Ned Park: write their self-reflection" in al
    assert not any(n in al for n in ("Bea Ross", "Cal Ibsen", "Hana Kim"))
    assert (
        str(digests["al@example.com"].message["Subject"]) == "Your team's overdue review tasks (2)"
    )


def test_muted_people_get_only_the_essential_reminders(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    with engine.begin() as conn:
        for who in ("bea", "mia"):
            set_reminder_settings(
                conn, org.ids[who], ReminderSettingsIn(mute_non_essential=True), actor="t"
            )
    run_pass(engine, mail_settings(settings, smtp), now=NOW)
    got = {who: [m for m in smtp.received if m.to == [f"{who}@example.com"]] for who in org.ids}
    assert by_rule(got["bea"]) == {"overdue": 2}  # self-reflection and nomination
    assert by_rule(got["mia"]) == {"overdue": 4}  # no manager feedback due soon, no digest
    assert by_rule(got["cal"]) == {"overdue": 2}
    assert by_rule(got["al"]) == {"overdue": 3, "due_soon": 1, "digest": 1}
    muted = got["bea"][0].part("plain")
    assert "even when reminders are muted" in muted


def test_muting_after_the_claim_skips_what_is_not_sent_yet(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp)
    with engine.begin() as conn:
        claim_due(conn, config, now=NOW)
        set_reminder_settings(
            conn, org.ids["al"], ReminderSettingsIn(mute_non_essential=True), actor="t"
        )
    summary = run_pass(engine, config, now=NOW)
    assert summary.outcomes[Channel.EMAIL].skipped == 2  # his due-soon nudge and digest
    assert by_rule([m for m in smtp.received if m.to == ["al@example.com"]]) == {"overdue": 3}


def test_with_the_mail_server_down_reminders_wait_and_are_delivered_later(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    total = OVERDUE_SELF + DUE_SOON + DIGESTS
    config = mail_settings(settings, smtp)
    before = {outcome: counted("email", outcome) for outcome in ("sent", "failed")}
    smtp.stop()
    down = run_pass(engine, config, now=NOW)
    outcome = down.outcomes[Channel.EMAIL]
    assert (outcome.sent, outcome.failed, outcome.not_tried) == (0, 1, total - 1)
    with engine.connect() as conn:
        rows = conn.execute(select(Reminder.status, Reminder.last_error)).all()
    assert len(rows) == total and Counter(s for s, _ in rows) == {"failed": 1, "pending": total - 1}
    assert {e for _, e in rows if e} <= {
        "SMTP server unreachable (ConnectionRefusedError)",
        "not tried: the destination was down earlier in the same pass",
    }
    smtp.start()
    # Back up, but the failed one waits out its back-off: the others go at once.
    run_pass(engine, config, now=NOW + timedelta(minutes=1))
    assert len(smtp.received) == total - 1
    run_pass(engine, config, now=NOW + timedelta(minutes=6))
    ids = Counter(m.message_id for m in smtp.received)
    assert len(ids) == total and set(ids.values()) == {1}
    assert statuses(engine) == {"sent": total}
    assert counted("email", "sent") - before["sent"] == total
    assert counted("email", "failed") - before["failed"] == 1


def counted(channel: str, outcome: str) -> float:
    """fairdraft_reminders_total of this process, for a channel and outcome."""
    value = process_metrics().registry.get_sample_value(
        "fairdraft_reminders_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


def test_a_message_that_keeps_failing_is_kept_as_given_up(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp, reminder_max_attempts=2)
    smtp.stop()
    run_pass(engine, config, now=NOW)
    run_pass(engine, config, now=NOW + timedelta(hours=1))
    with engine.connect() as conn:
        first = conn.execute(
            select(Reminder.status, Reminder.attempts).order_by(Reminder.id).limit(1)
        ).one()
    assert tuple(first) == ("gave_up", 2)


def test_hostile_names_are_escaped_in_html_and_cannot_break_chat_json(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer, hooks: HookServer
) -> None:
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == org.ids["bea"]).values(name=HOSTILE))
        conn.execute(update(Person).where(Person.id == org.ids["ned"]).values(name=HOSTILE))
    config = mail_settings(
        settings,
        smtp,
        reminder_slack_webhooks={"*": SecretStr(hooks.url("/slack"))},
        reminder_teams_webhooks={"Payments": SecretStr(hooks.url("/teams"))},
    )
    run_pass(engine, config, now=NOW)
    bea = [m for m in smtp.received if m.to == ["bea@example.com"]]
    al = [m for m in smtp.received if m.to == ["al@example.com"]]
    naming = 0
    for mail in smtp.received:
        page = mail.part("html")
        assert "<script>" not in page and "<!channel>" not in page
        assert "alert" not in str(mail.message["Subject"])
        if "alert(1)" in mail.part("plain"):
            naming += 1
            assert (
                "&lt;script&gt;alert(1)&lt;/script&gt; &quot;Q&quot; &amp; &lt;!channel&gt;" in page
            )
    assert naming >= len(bea) + 2  # Bea's own; Al's approval and feedback of Ned
    assert any(HOSTILE in m.part("plain") for m in bea)  # text/plain says it as it is
    assert any("approve " + HOSTILE + "'s peer nominations" in m.part("plain") for m in al)
    slack = [h.body for h in hooks.hooks if h.path == "/slack"]
    teams = [h.body for h in hooks.hooks if h.path == "/teams"]
    assert len(slack) == OVERDUE_SELF + DUE_SOON  # everyone: the "*" hook; no digests in chat
    assert len(teams) == 7 + 4 + 2 + 2  # Payments: Mia, Al, Ned, Bea (Mia nominates nobody)
    for body in slack:
        assert set(body) == {"text", "blocks"}
        assert "<!channel>" not in body["text"] + body["blocks"][0]["text"]["text"]
    hostile_slack = [b for b in slack if "alert(1)" in b["text"]]
    assert len(hostile_slack) == 4  # Bea and Ned: self-reflection and nomination each
    assert "&lt;!channel&gt;" in hostile_slack[0]["blocks"][0]["text"]["text"]
    for body in teams:
        assert body["type"] == "message" and set(body) == {"type", "attachments"}
        card = body["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard"
        assert card["actions"][0]["url"] == "https://fairdraft.example/tasks"
        text = " ".join(b["text"] for b in card["body"])
        assert "[x](https://evil.example)" not in text
    hostile_teams = [b for b in teams if "alert" in str(b)]
    assert hostile_teams and r"\[x\]\(https://evil\.example\)" in str(
        hostile_teams[0]["attachments"][0]["content"]["body"][0]["text"]
    )
    # Chat messages never name a task's subject (Al's approval of Ned says "a colleague").
    als = [str(b) for b in slack if "Al Reyes" in str(b)]
    assert len(als) == 4 and not any("alert" in b for b in als)
    assert any("approve a colleague's peer nominations" in b for b in als)


def test_an_address_a_header_cannot_hold_fails_that_message_alone(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    forged = "cal@example.com\r\nBcc: everyone@example.com"
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == org.ids["cal"]).values(email=forged))
    summary = run_pass(engine, mail_settings(settings, smtp), now=NOW)
    assert summary.outcomes[Channel.EMAIL].failed == 2  # Cal's two overdue nudges
    assert len(smtp.received) == OVERDUE_SELF + DUE_SOON + DIGESTS - 2
    assert not any("everyone" in str(m.to) or m.message["Bcc"] for m in smtp.received)
    with engine.connect() as conn:
        errors = conn.execute(
            select(Reminder.last_error).where(Reminder.status == MessageStatus.FAILED)
        ).scalars()
        assert set(errors) == {"the recipient's address is not a plain ASCII address"}


def test_a_failing_webhook_is_retried_and_a_chat_message_held_past_its_lease_is_unsure(
    engine: Engine, settings: Settings, org: CycleOrg, hooks: HookServer
) -> None:
    config = settings.model_copy(
        update={"reminder_slack_webhooks": {"Risk": SecretStr(hooks.url("/risk"))}}  # Cal alone
    )
    hooks.status = 503
    failed = run_pass(engine, config, now=NOW)
    assert failed.outcomes[Channel.SLACK].failed == 2  # Cal: overdue and due soon
    hooks.status = 200
    run_pass(engine, config, now=NOW + timedelta(minutes=6))
    assert statuses(engine) == {"sent": 2} and len(hooks.hooks) == 4  # 2 refused, 2 taken
    # A chat row held by a worker that stopped is not posted twice: it is marked unsure.
    payments = settings.model_copy(
        update={"reminder_slack_webhooks": {"Payments": SecretStr(hooks.url("/payments"))}}
    )
    with engine.begin() as conn:
        claimed = sum(c.count for c in claim_due(conn, payments, now=NOW))
        held = pick(conn, Channel.SLACK, now=NOW, lease=timedelta(minutes=10), limit=1)
    assert claimed == 15 and len(held) == 1
    lease = timedelta(seconds=payments.reminder_lease_s + 1)
    summary = run_pass(engine, payments, now=NOW + lease)
    assert summary.unsure == 1 and summary.outcomes[Channel.SLACK].sent == claimed - 1
    assert len([h for h in hooks.hooks if h.path == "/payments"]) == claimed - 1
    assert statuses(engine) == {"sent": 2 + claimed - 1, "unsure": 1}


def test_the_periodic_task_runs_a_pass_in_a_worker(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    """Scheduled by the worker (its cron from settings); run now, every task of the
    2026-H1 cycle is long overdue (the clock is the machine's), and each is sent."""
    config = mail_settings(settings, smtp, job_poll_s=0.05)
    with running_worker(engine, config):
        run_periodic(engine, "send_reminders")
    assert smtp.received and by_rule(smtp.received)["overdue"] >= OVERDUE_SELF + DUE_SOON
    assert set(statuses(engine)) == {"sent"}


def test_a_dry_run_counts_and_writes_nothing(
    engine: Engine, settings: Settings, org: CycleOrg, smtp: MailServer
) -> None:
    config = mail_settings(settings, smtp)
    dry = run_pass(engine, config, now=NOW, dry_run=True)
    assert {(c.rule, c.count) for c in dry.claimed} == {
        (ReminderRule.OVERDUE, OVERDUE_SELF),
        (ReminderRule.DUE_SOON, DUE_SOON),
        (ReminderRule.DIGEST, DIGESTS),
    }
    assert statuses(engine) == {} and smtp.received == []


def test_the_cli_runs_a_pass_by_hand_dry_or_for_one_cycle(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    org: CycleOrg,
    smtp: MailServer,
) -> None:
    for name, value in {
        "DATABASE_URL": database_url,
        "HOME": str(tmp_path / "home"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "reviews@fairdraft.example",
        "SMTP_PASSWORD": "hunter2-not-shown",
    }.items():
        monkeypatch.setenv(f"FAIRDRAFT_{name}", value)
    get_settings.cache_clear()
    try:
        dry = CliRunner().invoke(cli_app, ["remind", "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        counted = json.loads(dry.stdout)
        assert counted["dry_run"] is True and counted["outcomes"] == {}
        assert sum(c["count"] for c in counted["claimed"]) > 0 and smtp.received == []
        unknown = CliRunner().invoke(cli_app, ["remind", "--cycle", "2027-H1"])
        assert unknown.exit_code == 2 and "cycle 2027-H1 has no set-up" in unknown.output
        bad = CliRunner().invoke(cli_app, ["remind", "--cycle", "soon"])
        assert bad.exit_code == 2 and "soon" in bad.output
        done = CliRunner().invoke(cli_app, ["remind", "--cycle", "2026-H1"])
        assert done.exit_code == 0, done.output
        assert f"email: {len(smtp.received)} sent, 0 failed" in done.output
        assert "hunter2" not in dry.output + done.output
    finally:
        get_settings.cache_clear()


def test_the_reminders_page_mutes_and_unmutes_with_a_same_origin_form(
    engine: Engine, settings: Settings, org: CycleOrg
) -> None:
    origin = {"Origin": "http://testserver"}
    with TestClient(create_app(settings, engine=engine, worker=False)) as page:
        signed = page.post(
            "/sign-in",
            data={"token": org.tokens["al"], "next": "/me/reminders"},
            headers=origin,
            follow_redirects=False,
        )
        assert signed.status_code == 303
        shown = page.get("/me/reminders")
        assert shown.status_code == 200 and "Mute non-essential reminders" in shown.text
        assert "daily digest of your team" in shown.text  # Al manages Ned
        forged = page.post(
            "/me/reminders",
            data={"mute_non_essential": "true"},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        muted = page.post("/me/reminders", data={"mute_non_essential": "true"}, headers=origin)
        assert muted.status_code == 200 and "Non-essential reminders muted." in muted.text
        assert "Unmute reminders" in muted.text
        bad = page.post("/me/reminders", data={"mute_non_essential": "maybe"}, headers=origin)
        assert "mute_non_essential must be true or false" in bad.text
    with engine.connect() as conn:
        assert reminder_settings(conn, org.ids["al"]).mute_non_essential is True
        assert reminder_settings(conn, org.ids["bea"]).mute_non_essential is False


def test_no_channel_configured_claims_nothing(
    engine: Engine, settings: Settings, org: CycleOrg
) -> None:
    summary = run_pass(engine, settings, now=NOW)
    assert summary.channels == [] and summary.claimed == [] and statuses(engine) == {}


def test_a_person_mutes_their_own_reminders_through_the_api(
    engine: Engine, settings: Settings, org: CycleOrg
) -> None:
    with TestClient(create_app(settings, engine=engine, worker=False)) as api:
        url = "/api/v1/me/reminders"
        assert api.get(url, headers=org.auth("bea")).json() == {
            "mute_non_essential": False,
            "muted": [],
            "always_told": ["overdue"],
        }
        put = api.put(url, headers=org.auth("bea"), json={"mute_non_essential": True})
        assert put.status_code == 200 and put.json()["muted"] == ["due_soon", "digest"]
        assert api.get(url, headers=org.auth("bea")).json()["mute_non_essential"] is True
        assert api.get(url, headers=org.auth("cal")).json()["mute_non_essential"] is False
        for bad, field in (
            ({"mute_non_essential": "yes"}, "mute_non_essential"),
            ({"mute_non_essential": True, "person_id": org.ids["cal"]}, "person_id"),
            ({}, "mute_non_essential"),
        ):
            answer = api.put(url, headers=org.auth("bea"), json=bad)
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"][0]["field"] == field
        assert api.put(url, json={"mute_non_essential": True}).status_code == 401
    with engine.connect() as conn:
        events = conn.execute(
            select(AuditEvent.actor, AuditEvent.entity_id, AuditEvent.after).where(
                AuditEvent.action == "reminders_set"
            )
        ).all()
    assert [(e.entity_id, e.after) for e in events] == [
        (str(org.ids["bea"]), {"mute_non_essential": True})
    ]


def test_a_digest_never_tells_a_manager_who_still_owes_feedback_about_them(
    engine: Engine, settings: Settings, smtp: MailServer
) -> None:
    """Upward feedback is about the manager: a digest listing who has not answered yet
    would, day by day, tell them who wrote each anonymous answer."""
    people = start_cycle_org(engine, reviews=[*setup_body()["reviews"], "upward_feedback"])
    run_pass(engine, mail_settings(settings, smtp), now=NOW)
    digests = [m for m in smtp.received if str(m.message["Subject"]).startswith("Your team")]
    assert digests and all("upward" not in m.part("plain") for m in digests)
    own = [m for m in smtp.received if m.to == ["bea@example.com"]]
    assert any("upward" in m.part("plain") for m in own)  # Bea herself is still reminded
    assert "Bea Ross" in next(m for m in digests if m.to == ["mia@example.com"]).part("plain")
    assert people.ids["mia"]
