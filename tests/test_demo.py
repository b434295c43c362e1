"""`fairdraft demo` on a small org: the org stored, four people with their roles, the drafts
they see, the cycle's bias report, a one-time link each that signs them in at their start
page, timings with a total and a JSON line; stable when run again; a taken port said
before any set-up. The browser follows the printed links in tests/test_e2e_demo.py."""

import csv
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from evals.demo import DemoRun, PortTaken, demo_drafts, run_demo
from evals.synthetic_org import generate_org
from retrieval.schema import Chunk
from service.access.links import LinkState, look_up_link
from service.access.principal import load_principal
from service.bias.nlp import SenseParser
from service.cli import app as cli
from service.cycles.peer_feedback import Viewer, peer_feedback_of
from service.db.engine import open_engine
from service.db.models import AuditEvent, BiasReport, CycleTask, Draft, PanelMember, Person
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings, get_settings

PEOPLE, SEED = 40, 3
LINK = re.compile(r"https?://\S+/sign-in/link/fdl_[\w-]+")


def run(settings: Settings, parser: SenseParser) -> tuple[DemoRun, str]:
    out = StringIO()
    done = run_demo(
        settings, Console(file=out, width=120), people=PEOPLE, seed=SEED, serve=False, parser=parser
    )
    return done, out.getvalue()


def test_the_demo_stores_the_org_and_prints_counts_timings_a_total_and_a_json_line(
    settings: Settings, sense_parser: SenseParser
) -> None:
    done, output = run(settings, sense_parser)

    figures = done.figures
    assert figures["records_ingested"] > 500
    assert figures["chunks_embedded"] >= figures["records_ingested"]
    for step in ("start database", "migrate", "generate org", "ingest records", "roles and panel"):
        assert step in output
    for step in ("draft", "bias report", "links", "total"):
        assert re.search(rf"│ {step} +│ +\d+\.\d\d │", output), step
    assert figures["total_s"] >= figures["ingest_records_s"] + figures["bias_report_s"]
    assert "demographic values (restricted)" in output
    assert json.loads(output.strip().splitlines()[-1]) == figures


def test_the_demo_gives_an_employee_a_manager_a_panel_member_and_hr_their_roles(
    settings: Settings, engine: Engine, sense_parser: SenseParser
) -> None:
    done, output = run(settings, sense_parser)

    cast = done.cast
    employee, manager, panelist, hr = (m.person for m in cast.members)
    assert employee.manager_id == manager.id
    assert len({employee.id, manager.id, panelist.id, hr.id}) == 4
    with engine.connect() as conn:
        principals = {
            m.role: load_principal(conn, m.person.id, indirect=True) for m in cast.members
        }
        members = set(
            conn.execute(
                select(PanelMember.person_id).where(PanelMember.panel_id == cast.panel_id)
            ).scalars()
        )
        actors = {(r.actor, r.action) for r in conn.execute(select(AuditEvent))}
    assert principals["HR admin"] is not None and principals["HR admin"].hr_admin
    assert principals["manager"] is not None and principals["manager"].manages(employee.id)
    assert panelist.id in members and manager.id in members
    assert ("demo", "role.granted") in actors and ("demo", "panel.created") in actors
    assert (cast.employee.start, cast.manager.start, cast.hr.start) == ("/me", "/team", "/hr")
    for member in cast.members:  # who they are, in the printed table
        assert member.person.name in output and member.person.email in output


def test_the_demo_drafts_what_the_four_see_and_runs_the_bias_report(
    settings: Settings, engine: Engine, sense_parser: SenseParser
) -> None:
    done, _output = run(settings, sense_parser)

    wanted = {(p.id, k.value) for p, k in demo_drafts(done.cast)}
    with engine.connect() as conn:
        stored = {(r.subject_id, r.kind) for r in conn.execute(select(Draft))}
        reports = conn.execute(select(func.count()).select_from(BiasReport)).scalar_one()
    assert wanted <= stored
    assert {k for _, k in wanted} == {"self_reflection", "manager_feedback", "calibration_summary"}
    assert done.figures["drafts"] == len(wanted)
    assert done.figures["draft_supported_share_min"] == 1.0
    assert reports == 1


def test_the_demo_runs_a_review_cycle_so_the_cycle_pages_have_something_to_show(
    settings: Settings, engine: Engine, sense_parser: SenseParser
) -> None:
    done, output = run(settings, sense_parser)

    employee = done.cast.employee.person
    assert re.search(r"review cycle 2026-H1: started with \d+ tasks", output)
    with engine.connect() as conn:
        kinds = {
            (r.kind, r.status)
            for r in conn.execute(
                select(CycleTask.kind, CycleTask.status).where(CycleTask.assignee_id == employee.id)
            )
        }
        feedback = peer_feedback_of(conn, employee.id, "2026-H1", viewer=Viewer.SUBJECT)
    assert ("write_self_reflection", "open") in kinds
    assert ("nominate_peers", "done") in kinds
    assert ("give_peer_feedback", "open") in kinds  # a teammate asked for the employee's view
    assert feedback.answered == 3 and len(feedback.answers) == 3
    assert {a.author for a in feedback.answers} == {"a peer"}
    assert all(a.author_id is None for a in feedback.answers)
    again = StringIO()
    run_demo(
        settings,
        Console(file=again, width=120),
        people=PEOPLE,
        seed=SEED,
        serve=False,
        parser=sense_parser,
    )
    assert "set up by an earlier run, left as it is" in again.getvalue()


def test_the_demo_prints_a_live_one_time_link_for_each_of_the_four(
    settings: Settings, engine: Engine, sense_parser: SenseParser
) -> None:
    done, output = run(settings, sense_parser)

    printed = LINK.findall(output)
    assert printed == [link.url for link in done.links]
    assert [link.member for link in done.links] == list(done.cast.members)
    assert all(url.startswith("http://127.0.0.1:8000/") for url in printed)
    with engine.connect() as conn:
        states = {look_up_link(conn, url.rsplit("/", 1)[1]).state for url in printed}
    assert states == {LinkState.LIVE}
    assert "fairdraft sign-in-link --person EMAIL" in output


def test_running_the_demo_again_ingests_and_drafts_nothing_new_and_keeps_the_cast(
    settings: Settings, sense_parser: SenseParser
) -> None:
    first, _ = run(settings, sense_parser)

    again, _output = run(settings, sense_parser)

    assert again.figures["chunks_embedded"] == 0
    assert again.figures["records_ingested"] > 500
    assert again.figures["drafts"] == 0
    assert again.cast.members == first.cast.members
    assert again.cast.panel_id == first.cast.panel_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_taken_port_is_said_before_any_set_up(settings: Settings, engine: Engine) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = settings.model_copy(update={"api_port": port})
        with pytest.raises(PortTaken, match=f"port {port} on 127.0.0.1 is taken"):
            run_demo(busy, Console(file=StringIO()), people=PEOPLE, seed=SEED)

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 0


@dataclass
class Served:
    output: StringIO
    stop: threading.Event
    thread: threading.Thread
    result: list[DemoRun]

    def links(self) -> list[str]:
        return LINK.findall(self.output.getvalue())

    def printed(self) -> list[tuple[str, str, str]]:
        """(role, name, link) as the demo printed them: a line naming the person, then the
        link on a line of its own."""
        lines = self.output.getvalue().splitlines()
        found = []
        for before, line in pairwise(lines):
            if LINK.fullmatch(line.strip()):
                role, _, name = before.strip().rstrip(":").partition(", ")
                found.append((role, name, line.strip()))
        return found


@contextmanager
def serving_demo(
    settings: Settings, parser: SenseParser, *, people: int = PEOPLE, seed: int = SEED
) -> Iterator[Served]:
    """The whole demo, serving on a free port in a thread, until the block ends (the stop
    stands in for Ctrl-C)."""
    live = settings.model_copy(update={"api_port": free_port(), "job_poll_s": 0.05})
    out, stop, result = StringIO(), threading.Event(), []

    def demo() -> None:
        console = Console(file=out, width=120)
        result.append(run_demo(live, console, people=people, seed=seed, stop=stop, parser=parser))

    thread = threading.Thread(target=demo, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while "Ctrl-C stops it all" not in out.getvalue():
        assert thread.is_alive(), out.getvalue()
        assert time.monotonic() < deadline, "the demo did not start serving"
        time.sleep(0.1)
    try:
        yield Served(out, stop, thread, result)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "the stop (Ctrl-C's stand-in) did not end the demo"
    assert result, "the demo did not return after stopping"


@pytest.fixture
def served(settings: Settings, sense_parser: SenseParser) -> Iterator[Served]:
    with serving_demo(settings, sense_parser) as demo:
        yield demo


def test_the_served_demo_signs_each_printed_link_in_at_its_start_page(served: Served) -> None:
    links = served.links()
    assert len(links) == 4
    starts = []
    for url in links:
        base = url.split("/sign-in/")[0]
        with httpx.Client(base_url=base, follow_redirects=False) as browser:
            page = browser.get(url)
            assert page.status_code == 200 and "Sign in as" in page.text
            key = re.search(r'name="key" value="([^"]+)"', page.text)
            assert key is not None
            used = browser.post("/sign-in/link", data={"key": key[1]}, headers={"Origin": base})
            assert used.status_code == 303, used.text
            start = browser.get("/")
            starts.append(start.headers["location"])
            assert browser.get(starts[-1]).status_code == 200
    assert starts[0] == "/me" and starts[1] == "/team" and starts[3] == "/hr"
    assert "Serving http://127.0.0.1:" in served.output.getvalue()


@pytest.mark.slow
def test_the_demo_embeds_with_the_packaged_model_by_default(
    settings: Settings, sense_parser: SenseParser
) -> None:
    real = settings.model_copy(update={"embedding_model": DEFAULT_EMBEDDING_MODEL})
    out = StringIO()

    done = run_demo(
        real, Console(file=out, width=120), people=30, seed=1, serve=False, parser=sense_parser
    )

    figures = done.figures
    assert figures["chunks_embedded"] >= figures["records_ingested"] > 1000
    assert figures["embed_s"] > 0
    with open_engine(real) as engine, engine.connect() as conn:
        models = conn.execute(select(Chunk.embedding_model).distinct()).scalars().all()
    assert models == [DEFAULT_EMBEDDING_MODEL]


README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_example_people_are_people_of_the_demo_org(tmp_path: Path) -> None:
    """Every example email and employee id in the README names someone of the default demo
    org (120 people, seed 7), whose four people tests/test_e2e_demo.py checks by name."""
    generate_org(tmp_path, people=120, seed=7)
    with (tmp_path / "people.csv").open(encoding="utf-8") as people:
        rows = list(csv.DictReader(people))
    text = README.read_text(encoding="utf-8")

    emails = set(re.findall(r"[\w.+-]+@example\.com", text))
    ids = set(re.findall(r"\bE\d{3,}\b", text))

    assert len(emails) >= 4 and ids
    assert emails <= {r["email"] for r in rows}, emails - {r["email"] for r in rows}
    assert ids <= {r["employee_id"] for r in rows}, ids - {r["employee_id"] for r in rows}


def test_the_command_sets_up_prints_the_links_and_counts_its_start_up_in_the_total(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fairdraft demo --no-serve` as a script runs it: the people and their links, the
    timings from the process's start (imports included) and a last JSON line, exit 0."""
    assert settings.database_url is not None
    for name, value in {
        "FAIRDRAFT_DATABASE_URL": settings.database_url,
        "FAIRDRAFT_HOME": str(settings.home),
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
        "FAIRDRAFT_PROGRESS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["demo", "--people", "30", "--seed", "5", "--no-serve"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["start-up_and_imports_s"] > 0
    assert figures["total_s"] >= figures["start-up_and_imports_s"] + figures["bias_report_s"]
    assert len(LINK.findall(result.stdout)) == 4
    assert "Serving" not in result.stdout
