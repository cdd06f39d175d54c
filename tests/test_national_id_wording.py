"""Words a clerk reads (issue 16): "เลขประจำตัวนักเรียน" is the school's own student number, and a bare
"เลขประจำตัว" reads as it too. Every text dmcflow ships (mail templates, pages, the dashboard's script, every
string of its code: refusals, labels, report headers) calls the national ID "เลขประจำตัวประชาชน" (or
"รหัส G" for a G-code). "เลขประจำตัวนักเรียน" belongs only to a column that holds the student number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["activities", "api", "db", "dmcflow", "domain", "intake", "mailer", "web", "workflows"]
TEXT_SUFFIXES = {".j2", ".html", ".js"}
WRONG = re.compile(r"เลขประจำตัว(?!ประชาชน)")
STUDENT_NUMBER = "เลขประจำตัวนักเรียน"
# Columns that do hold the student number (`Student.student_no`), as many as each file has: the roster file's
# (domain/roster_file.py maps it to student_no) and the evidence pack's existence-marks.csv (beside the
# national ID's own column), and the workbench's menu tables (web/i18n/round_work.py `col_no`). Counted, so a second
# header elsewhere in the file (as dropouts.csv had) is caught.
STUDENT_NUMBER_COLUMNS = {"domain/roster_file.py": 1, "api/routers/reports.py": 1, "web/i18n/round_work.py": 1}


def shipped_files() -> list[Path]:
    found = []
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if "migrations" in path.parts or "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py" or path.suffix in TEXT_SUFFIXES:
                found.append(path)
    return sorted(found)


def texts_of(path: Path) -> list[tuple[int, str]]:
    """(line, text): a template whole, line by line; in Python every string constant, f-strings' parts too."""
    source = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return list(enumerate(source.splitlines(), start=1))
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def wrong_terms() -> list[str]:
    problems = []
    for path in shipped_files():
        where = path.relative_to(ROOT).as_posix()
        allowed = STUDENT_NUMBER_COLUMNS.get(where, 0)
        for line, text in texts_of(path):
            if text == STUDENT_NUMBER and allowed:
                allowed -= 1
                continue
            for m in WRONG.finditer(text):
                problems.append(f"{where}:{line}: {text[max(0, m.start() - 20):m.end() + 20]!r}")
    return problems


def test_every_shipped_text_calls_the_national_id_by_its_name():
    assert wrong_terms() == []


def test_the_scan_reads_templates_refusals_and_report_headers():
    """The scan must see what a clerk reads: a mail template, a refusal's Thai text, the evidence pack's headers."""
    scanned = {p.relative_to(ROOT).as_posix(): p for p in shipped_files()}
    assert "mailer/templates/reminder.txt.j2" in scanned and "api/static/dashboard.js" in scanned
    ids_texts = [t for _, t in texts_of(scanned["domain/ids.py"])]
    assert "เลขประจำตัวประชาชนต้องมี 13 หลัก" in ids_texts
    report_texts = [t for _, t in texts_of(scanned["api/routers/reports.py"])]
    assert "เลขประจำตัวประชาชน/รหัส G" in report_texts
    assert WRONG.search("เลขประจำตัวนักเรียน 1449900000018") and WRONG.search("(เลขประจำตัว 1449900000018)")
    assert not WRONG.search("เลขประจำตัวประชาชน 1449900000018")
