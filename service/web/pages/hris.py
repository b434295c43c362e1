"""HR's page for importing people from an HRIS export (docs/connectors.md, "HRIS exports"):
the export uploaded with one of the shipped mappings chosen by name, imported at once
through the same path as `fairdraft hris import`, and the counts told on the page. A
refused export is told on the page too, by line and the export's own column. HR only.

Exports up to FAIRDRAFT_MAX_BODY_BYTES (1 MiB by default, some 5,000 people) go through
the page; larger ones, or one's own mapping file, through the CLI.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import Engine

from service.http.deps import SettingsDep, get_engine
from service.ingest.hris.importer import HrisImport, import_upload
from service.ingest.hris.mapping import SHIPPED, load_shipped
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin, require_hr
from service.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = "/hr/people-import"
IMPORTING_IS_HRS = "importing people is HR's"
EngineDep = Annotated[Engine, Depends(get_engine)]


@router.get(PAGE)
def import_page(request: Request, principal: PagePrincipal, settings: SettingsDep) -> Response:
    require_hr(principal, IMPORTING_IS_HRS)
    mappings = [(name, load_shipped(name).mapping.vendor) for name in SHIPPED]
    return render(
        request,
        "hr_people_import.html.j2",
        mappings=mappings,
        max_kib=settings.max_body_bytes // 1024,
    )


@router.post(PAGE, dependencies=[SameOrigin, back_to(PAGE)])
def import_form(
    principal: PagePrincipal,
    engine: EngineDep,
    settings: SettingsDep,
    file: UploadFile,
    mapping: Annotated[str, Form(max_length=32)],
    skip_invalid: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require_hr(principal, IMPORTING_IS_HRS)
    done = import_upload(
        engine,
        settings,
        file.file,
        filename=file.filename,
        mapping=mapping,
        actor=principal.actor,
        skip_invalid=skip_invalid == "true",
    )
    return redirect_with(PAGE, notice=told(done))


def told(done: HrisImport) -> str:
    summary = done.summary
    said = (
        f"{summary.path}: {summary.inserted} new, {summary.updated} updated, "
        f"{summary.unchanged} unchanged"
    )
    if done.leavers.deactivated:
        said += f"; {len(done.leavers.deactivated)} made inactive"
    if done.leavers.reactivated:
        said += f"; {len(done.leavers.reactivated)} active again"
    if summary.refused:
        first = "; ".join(str(error) for error in summary.refused[:3])
        said += f"; {len(summary.refused)} invalid rows skipped ({first})"
    return said
