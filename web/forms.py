"""What the workbench's forms share: the CSRF token's field, and a refusal about one field, shown beside it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from pydantic import ValidationError

from api.viewer import CSRF_FIELD
from domain.refusals import Refusal, refusal

CsrfForm = Annotated[str | None, Form(alias=CSRF_FIELD, max_length=100)]


def field_refusal(exc: ValidationError) -> tuple[Refusal, str]:
    """A form field the rules' models refuse (too long, empty name, not a date): the refusal and its field."""
    first = exc.errors()[0]
    field = str(first.get("loc", ("",))[-1])
    return refusal("invalid_field", f"ข้อมูลในช่องนี้ไม่ถูกต้อง: {first.get('msg', '')}",
                   f"This field is not valid: {first.get('msg', '')}", 422), field


class Beside(Exception):
    """Raised while a form is read: its page comes back with `problem` beside the field `field`."""

    def __init__(self, problem: Refusal, field: str) -> None:
        super().__init__(problem.code)
        self.problem, self.field = problem, field
