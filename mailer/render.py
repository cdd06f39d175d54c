"""Email bodies from Jinja2 templates: Thai first, English beneath, Thai-style dates."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from domain.ids import id_term
from domain.thai_time import english_datetime, thai_datetime, thai_duration


@lru_cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["thai"] = thai_datetime
    env.filters["english"] = english_datetime
    env.filters["thai_duration"] = thai_duration
    # `{{ student_id | id_term }} {{ student_id }}`: "เลขประจำตัวประชาชน 1…" or "รหัส G G…" (and `id_term_en`)
    env.filters["id_term"] = lambda student_id: id_term(student_id)[0]
    env.filters["id_term_en"] = lambda student_id: id_term(student_id)[1]
    return env


def render(template: str, **context) -> tuple[str, str]:
    """Answers (subject, body): the template's first line is the subject."""
    text = _env().get_template(template).render(**context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")
