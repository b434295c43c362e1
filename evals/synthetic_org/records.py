"""A year of evidence for everyone: runs each composer over each person, in person order,
and returns the records sorted as an export would be (by time, then source and id)."""

import random
from collections.abc import Sequence

from evals.synthetic_org.feedback import FeedbackWriter
from evals.synthetic_org.goals import GoalWriter
from evals.synthetic_org.model import Person, Record
from evals.synthetic_org.one_on_ones import OneOnOneWriter
from evals.synthetic_org.recognition import RecognitionWriter
from evals.synthetic_org.scene import SceneMaker
from evals.synthetic_org.self_notes import SelfNoteWriter
from evals.synthetic_org.work_records import WorkWriter


def write_year(rng: random.Random, people: Sequence[Person]) -> tuple[list[Record], SceneMaker]:
    """Every person's goals, work records, 1:1 notes, feedback, kudos and self notes. The
    SceneMaker comes back too so later steps (planted patterns) share its id counters."""
    scenes = SceneMaker(rng, people)
    goals, work, one_on_ones = GoalWriter(), WorkWriter(), OneOnOneWriter()
    feedback, recognition, notes = FeedbackWriter(), RecognitionWriter(), SelfNoteWriter()
    records: list[Record] = []
    for person in people:
        scene = scenes.scene(person)
        records += goals.year(scene)
        records += work.year(scene)
        records += one_on_ones.year(scene)
        records += feedback.year(scene)
        records += recognition.year(scene)
        records += notes.year(scene)
    return records, scenes


def export_order(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.occurred_at, r.source, r.external_id))
