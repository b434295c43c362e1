"""Peer and upward feedback at the command line, for the operator (who acts for HR):
`fairdraft cycle nominations|nominate|approve-nominations|peer-feedback`.

Peers answer through the API (their own requests only); the operator sets or approves a
list for someone who cannot, and reads a person's peer or upward feedback with the counts
and, as HR does, the authors. Every change is audited with the operator as the actor. Like
every command module, this one imports the database layer only inside the commands.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from domain.phases import FEEDBACK_KINDS
from service.cli_cycles import CycleOption, out
from service.cli_errors import refuse_option, user_errors
from service.cli_lists import JsonOption
from service.cli_output import plain, print_json
from service.cli_service import ACTOR
from service.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from service.cycles.nominations import Nominations
    from service.cycles.peer_feedback import PeerFeedbackOut

PersonOption = Annotated[str, typer.Option(help="employee_id or email of the subject")]


def kind_option(kind: str) -> str:
    if kind not in FEEDBACK_KINDS:
        refuse_option(f"--kind: {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
    return kind


def nominations_show(
    period: CycleOption, person: PersonOption, as_json: JsonOption = False
) -> None:
    """Show a person's list of nominated peers in a cycle."""
    from service.cycles.nominations import nominations
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        listed = nominations(conn, period.name, find_person(conn, person).id)
    _show_nominations(listed, as_json)


def nominate(
    period: CycleOption,
    person: PersonOption,
    peer: Annotated[list[str], typer.Option(help="a peer's employee_id or email; repeat it")],
    as_json: JsonOption = False,
) -> None:
    """Set a person's whole list of peers (as their manager would: audited as the operator)."""
    from service.cycles.nominations import set_nominations
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        subject = find_person(conn, person).id
        peers = _people(conn, peer)
        listed = set_nominations(conn, period.name, subject, peers, actor=ACTOR, by_manager=True)
    _show_nominations(listed, as_json)


def approve_nominations_command(
    period: CycleOption, person: PersonOption, as_json: JsonOption = False
) -> None:
    """Approve a person's list: each peer is sent a feedback request."""
    from service.cycles.nominations import approve_nominations
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        sent = approve_nominations(conn, period.name, find_person(conn, person).id, actor=ACTOR)
    if as_json:
        print_json(sent)
    else:
        out.print(plain(f"approved: {sent.requests} feedback requests sent"))


def peer_feedback(
    period: CycleOption,
    person: PersonOption,
    kind: Annotated[
        str, typer.Option(help=f"one of {', '.join(FEEDBACK_KINDS)}", callback=kind_option)
    ] = "peer",
    as_json: JsonOption = False,
) -> None:
    """Show a person's peer (or upward) feedback: counts, and the answers with their
    authors once at least 3 have answered."""
    from domain.phases import FeedbackKind
    from service.cycles.peer_feedback import Viewer, peer_feedback_of
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        subject = find_person(conn, person).id
        found = peer_feedback_of(
            conn, subject, period.name, viewer=Viewer.HR, kind=FeedbackKind(kind)
        )
    _show_feedback(found, as_json)


def _people(connection: "Connection", references: list[str]) -> list[int]:
    from service.ingest.directory import find_person

    return [find_person(connection, reference).id for reference in references]


def _show_nominations(listed: "Nominations", as_json: bool) -> None:
    if as_json:
        print_json(listed)
        return
    state = "approved" if listed.approved else "not approved"
    out.print(plain(f"{len(listed.peers)} peers nominated ({state})"))
    for peer in listed.peers:
        added = " (added by the manager)" if peer.added_by_manager else ""
        out.print(plain(f"  {peer.name}{added}"))


def _show_feedback(found: "PeerFeedbackOut", as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    out.print(
        plain(
            f"{found.kind} feedback: {found.asked} asked, {found.answered} answered, "
            f"{found.declined} declined (answers shown from {found.shown_from})"
        )
    )
    for answer in found.answers:
        out.print(plain(f"from {answer.author}:"))
        for question, text in zip(answer.questions, answer.answers, strict=False):
            out.print(plain(f"  {question}\n    {text}"))
