"""Files handed to officers: always a download, with the type sniffed at storage and no sniffing by the browser."""

from __future__ import annotations

from fastapi import Response

from db.models import EvidenceFile

_EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def evidence_download(file: EvidenceFile) -> Response:
    name = f"{file.sha256[:12]}.{_EXTENSIONS[file.content_type]}"
    return Response(file.data, media_type=file.content_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"})
