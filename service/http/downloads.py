"""A file to download, answered the same by the API and the pages: CSV (written by
domain.spreadsheet, formulas neutralised) as an attachment with a file name that holds only
characters a name may hold."""

import re

from fastapi.responses import Response

CSV_TYPE = "text/csv; charset=utf-8"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def csv_download(text: str, filename: str) -> Response:
    """`text` as a CSV attachment named `filename` (anything but letters, digits, dot, dash
    and underscore becomes an underscore: the name is built from a cycle's name)."""
    safe = _UNSAFE.sub("_", filename)
    return Response(
        text,
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )
