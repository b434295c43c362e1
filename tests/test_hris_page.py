"""HR's people-import page (service/web/pages/hris.py): HR uploads an HRIS export with a
shipped mapping and is told the counts; anyone else is refused and nothing is written; a
refused export is told on the page by line and column, escaped; a mapping is
chosen by name only, never read from a path; the upload never outlives the request."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from service.db.models import Person
from service.ingest.hris import importer
from service.ingest.hris.mapping import shipped_sample
from service.ingest.uploads import uploads_dir
from service.settings import Settings
from tests.api_org import ApiOrg
from tests.test_hris import TODAY
from tests.test_web import ORIGIN, sign_in

PAGE = "/hr/people-import"


@pytest.fixture(autouse=True)
def _fixed_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The samples' future leavers stay in the future whenever the tests run."""
    monkeypatch.setattr(importer, "today_utc", lambda: TODAY)


def people_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Person)).scalar_one())


def post(client: TestClient, mapping: str, name: str, body: bytes, **extra: str) -> str:
    """The form posted; the page it leads back to, as text."""
    response = client.post(
        PAGE,
        data={"mapping": mapping, **extra},
        files={"file": (name, body, "text/csv")},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == PAGE
    return client.get(PAGE).text


def test_hr_imports_a_sample_and_is_told_the_counts_and_again_nothing_changes(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "hal")
    before = people_count(engine)
    sample = shipped_sample("hibob").read_bytes()

    page = client.get(PAGE)
    first = post(client, "hibob", "hibob.csv", sample)
    again = post(client, "hibob", "hibob.csv", sample)

    assert page.status_code == 200 and '<option value="personio">Personio</option>' in page.text
    assert "hibob.csv: 6 new, 0 updated, 0 unchanged; 1 made inactive" in first
    assert "hibob.csv: 0 new, 0 updated, 6 unchanged" in again
    assert people_count(engine) == before + 6
    assert list(uploads_dir(settings).iterdir()) == []


@pytest.mark.parametrize("who", ["cy", "bo"])
def test_anyone_but_hr_is_refused_and_nothing_is_imported(
    client: TestClient, api_org: ApiOrg, engine: Engine, who: str
) -> None:
    sign_in(client, api_org, who)
    before = people_count(engine)

    page = client.get(PAGE)
    form = client.post(
        PAGE,
        data={"mapping": "hibob"},
        files={"file": ("hibob.csv", shipped_sample("hibob").read_bytes(), "text/csv")},
        headers=ORIGIN,
        follow_redirects=False,
    )

    assert page.status_code == 403 and "importing people is HR&#39;s" in page.text
    assert form.status_code == 303  # told on the form's page, like every refused form
    assert "importing people is HR&#39;s" in client.get(form.headers["location"]).text
    assert people_count(engine) == before


def test_without_a_sign_in_the_page_sends_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get(PAGE, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/sign-in?next={PAGE}"


def test_a_form_from_another_site_is_refused(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    sign_in(client, api_org, "hal")
    before = people_count(engine)

    response = client.post(
        PAGE,
        data={"mapping": "hibob"},
        files={"file": ("hibob.csv", shipped_sample("hibob").read_bytes(), "text/csv")},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )

    assert response.status_code == 403
    assert people_count(engine) == before


def test_a_refused_export_is_told_on_the_page_by_line_and_column_escaped(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "hal")
    before = people_count(engine)
    sample = shipped_sample("bamboohr").read_text(encoding="utf-8")
    hostile = sample.replace("01/10/2022", "<b>x</b>")

    page = post(client, "bamboohr", '<img src=x onerror="alert(1)">.csv', hostile.encode())

    assert "line 4, Hire Date: &#39;&lt;b&gt;x&lt;/b&gt;&#39; is not a date (%m/%d/%Y)" in page
    assert "<b>x</b>" not in page and "<img" not in page
    assert people_count(engine) == before
    assert list(uploads_dir(settings).iterdir()) == []


def test_skip_invalid_lands_the_valid_rows_and_says_which_were_skipped(
    client: TestClient, api_org: ApiOrg
) -> None:
    sign_in(client, api_org, "hal")
    sample = shipped_sample("bamboohr").read_text(encoding="utf-8")

    page = post(
        client,
        "bamboohr",
        "bamboo.csv",
        sample.replace("01/10/2022", "2022-01-10").encode(),
        skip_invalid="true",
    )

    assert "bamboo.csv: 5 new, 0 updated, 0 unchanged; 2 made inactive; 1 invalid rows" in page
    assert "line 4, Hire Date" in page


@pytest.mark.parametrize("mapping", ["/etc/passwd", "../vendors/workday.toml", "sap"])
def test_a_mapping_is_chosen_by_name_and_never_read_from_a_path(
    client: TestClient, api_org: ApiOrg, engine: Engine, tmp_path: Path, mapping: str
) -> None:
    sign_in(client, api_org, "hal")
    before = people_count(engine)

    page = post(client, mapping, "x.csv", shipped_sample("workday").read_bytes())

    assert "is not a shipped mapping; choose one of workday, bamboohr" in page
    assert people_count(engine) == before


def test_an_empty_or_binary_upload_is_told_not_stored(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "hal")

    empty = post(client, "workday", "empty.csv", b"")
    zipped = post(client, "workday", "export.zip", b"PK\x03\x04" + b"\x00" * 64)

    assert "the export is empty" in empty
    assert "export.zip: refused" in zipped and "not a UTF-8 text export" in zipped
    assert list(uploads_dir(settings).iterdir()) == []
