"""Files handed to officers: always a download, with the type sniffed at storage and no sniffing by the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from db.models import EvidenceFile
from domain.refusals import not_found

# The only types ever served as themselves; anything else (a row from before sniffing, a bug) is a
# plain download, never a page the browser would render.
_EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

# An evidence file is named by its content hash: nothing else reaches the database, let alone a path.
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the file's SHA-256, 64 hex digits")]


def evidence_download(file: EvidenceFile | None) -> Response:
    if file is None:
        raise not_found("หลักฐาน", "evidence", "")
    media_type = file.content_type if file.content_type in _EXTENSIONS else "application/octet-stream"
    name = f"{file.sha256[:12]}.{_EXTENSIONS.get(media_type, 'bin')}"
    return Response(file.data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})
