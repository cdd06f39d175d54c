"""Every refusal dmcflow can answer: a stable code, Thai first, English beside it.

The API turns a `Refusal` into `{code, message_th, message_en}`; workflows carry the same triple in an
`ApplicationError` so an update's caller learns at once why it was refused.
"""

from __future__ import annotations


class Refusal(Exception):
    """A rule said no. `status` is the HTTP status the API answers with."""

    def __init__(self, code: str, message_th: str, message_en: str, status: int = 409,
                 details: dict | None = None) -> None:
        super().__init__(code, message_th, message_en, status)
        self.code, self.message_th, self.message_en, self.status = code, message_th, message_en, status
        # machine-readable extras beside the texts (e.g. the open cases' references): no personal data
        self.details = details or {}

    def __repr__(self) -> str:
        return f"Refusal({self.code!r}, {self.message_en!r}, status={self.status})"

    def __str__(self) -> str:  # shows in logs and Temporal failures: never personal data
        return f"{self.code}: {self.message_en}"

    def as_dict(self) -> dict:
        return {**self.details, "code": self.code, "message_th": self.message_th, "message_en": self.message_en}

    @classmethod
    def from_dict(cls, d: dict) -> Refusal:
        """The refusal back from `as_dict()` plus its `status` (a workflow failure's details, a roster report's
        issue): the remaining keys are its details."""
        extra = {k: v for k, v in d.items() if k not in ("code", "message_th", "message_en", "status")}
        return cls(d["code"], d["message_th"], d["message_en"], int(d.get("status", 409)), details=extra)


def refusal(code: str, th: str, en: str, status: int = 409, details: dict | None = None) -> Refusal:
    """The one way rules say no (the class itself is built only here and in `Refusal.from_dict`)."""
    return Refusal(code, th, en, status, details)


# Authentication and access
def unauthenticated() -> Refusal:
    return refusal("unauthenticated", "ต้องเข้าสู่ระบบด้วยโทเค็นที่ถูกต้อง", "A valid bearer token is required", 401)


def forbidden(what_th: str, what_en: str) -> Refusal:
    return refusal("forbidden", f"ไม่มีสิทธิ์{what_th}", f"Not allowed to {what_en}", 403)


def not_found(kind_th: str, kind_en: str, key: str) -> Refusal:
    return refusal("not_found", f"ไม่พบ{kind_th} {key}", f"No {kind_en} {key}", 404)


# Input
def invalid(code: str, th: str, en: str) -> Refusal:
    return refusal(code, th, en, 422)
