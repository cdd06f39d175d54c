"""Uploads that are wrong in every way a school can get them wrong, and the evidence downloads.

Every bad upload is a 4xx with a code and Thai + English, and leaves nothing behind: the roster, the
staged batches and the evidence store are as they were. Evidence goes only to the right officers (the
matrix in tests/test_authz_matrix.py), always as a download of a whitelisted type, never rendered.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook
from sqlmodel import func, select

from api.downloads import evidence_download
from db.engine import session_scope
from db.models import EvidenceFile, RosterBatch, Student
from tests.api_world import EVIDENCE_SHA, World, fresh_db_url, populated_world
from tests.intake.messages import EXE, JPEG, PNG
from tests.stack import HEADER, SCHOOL

UPLOAD_LIMIT = 1024 * 1024  # this world's max_upload_bytes: small, so "huge" is cheap to send
GOOD_ROW = f"{SCHOOL},ก,1449900000107,ม.1,1,7,ช,เด็กชาย,อัปโหลด,ทดสอบ,02/02/2555,ใช่\n"


@pytest.fixture(scope="module")
async def world(migrated_template, tmp_path_factory):
    async with populated_world(fresh_db_url(migrated_template, tmp_path_factory), max_upload_bytes=UPLOAD_LIMIT) as w:
        yield w


def snapshot(world: World) -> tuple:
    with session_scope(world.stack.engine) as s:
        students = sorted((r.school_code, r.student_id, r.status, r.grade) for r in s.exec(select(Student)))
        return (students, s.exec(select(func.count()).select_from(RosterBatch)).one(),
                s.exec(select(func.count()).select_from(EvidenceFile)).one())


def assert_refused(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["message_th"] and body["message_en"] and body["message_th"] != body["message_en"]


def xlsx(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bomb() -> bytes:
    """A valid-looking workbook whose sheet unpacks to 300 MB (about 300 KB on the wire)."""
    good = zipfile.ZipFile(io.BytesIO(xlsx([["x"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in good.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with z.open(info.filename, "w", force_zip64=True) as f:
                    for _ in range(300):
                        f.write(b"<!--" + b" " * (1024 * 1024 - 7) + b"-->")
            else:
                z.writestr(info, good.read(info.filename))
    return out.getvalue()


def broken_xlsx() -> bytes:
    """A real workbook without its sheet."""
    good = zipfile.ZipFile(io.BytesIO(xlsx([HEADER.strip().split(","), GOOD_ROW.strip().split(",")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in good.namelist():
            if "worksheets" not in name:
                z.writestr(name, good.read(name))
    return out.getvalue()


BAD_ROSTERS = [
    ("empty.csv", b"", "text/csv", 422, "file_empty"),
    ("photo.csv", PNG, "image/png", 422, "file_type"),
    ("program.exe", EXE, "application/x-msdownload", 422, "file_type"),
    ("utf16.csv", (HEADER + GOOD_ROW).encode("utf-16"), "text/csv", 422, "file_type"),
    ("latin.csv", HEADER.encode() + b"\xdb\xfc\xfd\xfe\xff\n", "text/csv", 422, "file_encoding"),
    ("noheader.csv", GOOD_ROW.encode(), "text/csv", 422, "file_headers"),
    ("garbage.xlsx", b"PK\x03\x04" + b"\x00garbage" * 100, "application/vnd.ms-excel", 422, "file_unreadable"),
    ("nosheet.xlsx", broken_xlsx(), "application/octet-stream", 422, "file_unreadable"),
    ("cut.xlsx", xlsx([HEADER.strip().split(",")])[:300], "application/octet-stream", 422, "file_unreadable"),
    ("bomb.xlsx", zip_bomb, "application/octet-stream", 413, "file_too_large"),  # built when it runs
]


@pytest.mark.parametrize("name,data,ctype,status,code", BAD_ROSTERS, ids=[b[0] for b in BAD_ROSTERS])
async def test_a_bad_roster_file_is_refused_and_changes_nothing(world, name, data, ctype, status, code):
    data = data() if callable(data) else data
    before = snapshot(world)
    for url, who in ((f"/rounds/{world.round_id}/students/import", "staff"),
                     (f"/rounds/{world.round_id}/affiliation-lists", "district")):
        r = await world.http.post(url, headers=world.stack.auth(who), data={"agency": "opec"},
                                  files={"file": (name, data, ctype)})
        assert_refused(r, status, code)
    assert snapshot(world) == before


async def test_a_huge_upload_is_refused_before_it_is_read(world):
    before = snapshot(world)
    huge = HEADER.encode() + GOOD_ROW.encode() * (2 * UPLOAD_LIMIT // len(GOOD_ROW.encode()))
    r = await world.http.post(f"/rounds/{world.round_id}/students/import", headers=world.stack.auth("staff"),
                              files={"file": ("big.csv", huge, "text/csv")})
    assert_refused(r, 413, "request_too_large")
    assert "MB" in r.json()["message_th"]

    # No Content-Length (chunked): refused as soon as the limit is passed, not after the whole body.
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    sent = 0

    async def body():
        nonlocal sent
        yield head
        for _ in range(200):  # 200 x 64 KB = 12.5 MB offered
            sent += 1
            yield b"x" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = await world.http.post(f"/rounds/{world.round_id}/students/import", content=body(),
                              headers={**world.stack.auth("staff"),
                                       "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_refused(r, 413, "request_too_large")
    assert sent * 65536 <= UPLOAD_LIMIT + 256 * 1024, f"read {sent} chunks before refusing"

    r = await world.http.post(f"/rounds/{world.round_id}/schools/{SCHOOL}/end-of-year",
                              headers={**world.stack.auth("staff"), "Content-Type": "application/json"},
                              content=b'{"step": "3.2.2", "records": [' + b'{"student": "x"},' * 200_000 + b"{}]}")
    assert_refused(r, 413, "request_too_large")  # JSON bodies have their own, small limit
    assert snapshot(world) == before


async def test_evidence_that_is_not_a_pdf_jpeg_or_png_is_refused(world):
    before = snapshot(world)
    url = f"/rounds/{world.round_id}/duplicates/{world.case_id}/resolution"
    for name, data in (("x.pdf", EXE), ("x.html", b"<html><script>alert(1)</script>"), ("x.png", b"")):
        r = await world.http.post(url, headers=world.stack.auth("director2"), data={"action": "present"},
                                  files={"evidence": (name, data, "application/pdf")})
        if data:
            assert_refused(r, 422, "evidence_type")
        else:
            assert r.status_code in (200, 409, 422), r.text  # an empty file is no evidence: declared without it
    r = await world.http.post(url, headers=world.stack.auth("director2"), data={"action": "present"},
                              files={"evidence": ("x.jpg", JPEG, "text/html")})  # the bytes decide the type
    assert r.status_code in (200, 409), r.text
    after = snapshot(world)
    assert after[:2] == before[:2]


async def test_an_import_with_good_and_bad_rows_applies_the_good_ones_only(world):
    csv = HEADER + GOOD_ROW + f"{SCHOOL},ก,1449900000108,ม.1,1,8,ช,เด็กชาย,ผิด,หลัก,02/02/2555,ใช่\n"
    r = await world.http.post(f"/rounds/{world.round_id}/students/import", headers=world.stack.auth("staff"),
                              files={"file": ("r.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 1 and [i["code"] for i in r.json()["issues"]] == ["national_id_check_digit"]


DOWNLOADS = {
    "duplicate evidence": "/rounds/{w.round_id}/duplicates/{w.case_id}/evidence/" + EVIDENCE_SHA,
    "correction evidence": "/id-corrections/{w.correction}/evidence/" + EVIDENCE_SHA,
    "original message": "/id-corrections/{w.correction}/message",
}


@pytest.mark.parametrize("what", DOWNLOADS)
async def test_downloads_are_attachments_of_safe_types(world, what):
    r = await world.http.get(DOWNLOADS[what].format(w=world), headers=world.stack.auth("district"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] in ("application/pdf", "image/jpeg", "image/png", "message/rfc822")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    assert r.headers["x-content-type-options"] == "nosniff"


REFUSED_AS = ("not_found", "invalid_request", "http_404", "nul_character")
TRAVERSALS = ["..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%5C..%5Cwindows%5Cwin.ini",
              "....//....//etc/passwd", EVIDENCE_SHA + "%00.html", EVIDENCE_SHA.upper(), EVIDENCE_SHA[:63],
              "%2Fetc%2Fpasswd", "a" * 64]


@pytest.mark.parametrize("base", ["/rounds/{w.round_id}/duplicates/{w.case_id}/evidence/",
                                  "/id-corrections/{w.correction}/evidence/"])
async def test_path_traversal_and_unknown_ids_are_refused_not_served(world, base):
    for bad in TRAVERSALS:
        r = await world.http.get(base.format(w=world) + bad, headers=world.stack.auth("admin"))
        assert r.status_code in (404, 422), (bad, r.status_code)
        body = r.json()
        assert body["code"] in REFUSED_AS and body["message_th"], (bad, body)
        assert b"root:" not in r.content and not r.content.startswith(b"%PDF")


async def test_evidence_is_only_served_through_the_record_it_belongs_to(world):
    """The case's evidence file exists, but asked for through a record it does not belong to it is not there."""
    other_case = "dup-0000000000000000"
    r = await world.http.get(f"/rounds/{world.round_id}/duplicates/{other_case}/evidence/{EVIDENCE_SHA}",
                             headers=world.stack.auth("admin"))
    assert_refused(r, 404, "not_found")
    r = await world.http.get(f"/rounds/other-round/duplicates/{world.case_id}/evidence/{EVIDENCE_SHA}",
                             headers=world.stack.auth("admin"))
    assert_refused(r, 404, "not_found")


def test_a_stored_file_of_another_type_is_never_served_as_a_page():
    for ctype in ("text/html", "image/svg+xml", "application/javascript", ""):
        response = evidence_download(EvidenceFile(sha256="ab" * 32, content_type=ctype, size=8,
                                                  filename="x.html", data=b"<script>"))
        assert response.media_type == "application/octet-stream"
        assert response.headers["content-disposition"] == f'attachment; filename="{"ab" * 6}.bin"'
        assert response.headers["x-content-type-options"] == "nosniff"
