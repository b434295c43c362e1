"""A draft version's language profile as its check keeps it (`draft_checks.language`), so
that the cycle's report rebuilds the profile instead of reading the version again.

A profile is fixed by three things: the version's text (never changed once saved), the
rules that read it (`language.language_version`: the code's LANGUAGE_REVISION, the data
files, the spaCy model) and everyone's names (`language.names_version`: a colleague called
Harsh is not harsh wording). The stored form names the last two; a profile stored under
other rules or other names is not reused, and a check stored before migration 0010 has
none. Reused or computed, the report sees the same `LanguageProfile`.

The measures are kept here as well as in the check's `profile` column, so the stored
language stands alone: when the rules change, the report replaces the language of the
check it profiled again, while the check's `profile` and `flags` (what the person who
acknowledged the flags saw) stay as they were.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from service.bias.language import (
    MEASURES,
    LanguageFlag,
    LanguageProfile,
    language_version,
    names_version,
)
from service.bias.nlp import SenseParser


@dataclass(frozen=True)
class LanguageKey:
    """What a profile was read with: the version of the rules and of the names."""

    revision: str
    names: str


def language_key(parser: SenseParser, names: frozenset[str]) -> LanguageKey:
    """The key of profiles read today with `parser` and everyone's name words `names`."""
    return LanguageKey(language_version(parser), names_version(names))


class StoredLanguage(BaseModel):
    """The stored form: the key, the measures (every key of MEASURES) and the flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revision: str
    names: str
    measures: dict[str, float]
    flags: tuple[LanguageFlag, ...]


def stored_language(profile: LanguageProfile, key: LanguageKey) -> dict[str, Any]:
    """The profile as the JSON of the `language` column."""
    return StoredLanguage(
        revision=key.revision,
        names=key.names,
        measures=profile.measures,
        flags=tuple(profile.flags),
    ).model_dump(mode="json")


def reused_profile(stored: str | None, key: LanguageKey) -> LanguageProfile | None:
    """The profile kept as `stored` (the column as JSON text) when it was read with `key`;
    None when there is none (a check before migration 0010), when it was read with other
    rules or names, or when it is in a form this version does not read: profile again."""
    if stored is None:
        return None
    try:
        language = StoredLanguage.model_validate_json(stored)
    except ValidationError:
        return None
    if (language.revision, language.names) != (key.revision, key.names):
        return None
    if set(language.measures) != set(MEASURES):
        return None
    measures = {measure: language.measures[measure] for measure in MEASURES}
    return LanguageProfile(measures, list(language.flags))
