"""A person's reminder settings: their own only, whatever their role. Muting stops the
non-essential reminders (due soon, the manager's digest); an overdue task of one's own is
told anyway (docs/reminders.md)."""

from fastapi import APIRouter

from service.cycles.reminders import (
    ReminderSettingsIn,
    ReminderSettingsOut,
    reminder_settings,
    set_reminder_settings,
)
from service.http.deps import ConnectionDep, PrincipalDep
from service.http.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["reminders"], responses=ERROR_RESPONSES)


@router.get("/me/reminders", summary="The caller's reminder settings")
def my_reminders(principal: PrincipalDep, connection: ConnectionDep) -> ReminderSettingsOut:
    return reminder_settings(connection, principal.person_id)


@router.put("/me/reminders", summary="Mute or unmute the caller's non-essential reminders")
def set_my_reminders(
    body: ReminderSettingsIn, principal: PrincipalDep, connection: ConnectionDep
) -> ReminderSettingsOut:
    return set_reminder_settings(connection, principal.person_id, body, actor=principal.actor)
