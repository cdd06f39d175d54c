"""Stable workflow IDs: from round, school code and area only, never from a person."""

import hashlib


def school_round_id(round_id: str, school_code: str) -> str:
    return f"school-round/{round_id}/{school_code}"


def area_key(area: str) -> str:
    # Area names are Thai; a short digest keeps IDs ASCII while the name stays a search attribute.
    return hashlib.sha1(area.encode()).hexdigest()[:12]


def area_cutoff_id(round_id: str, area: str) -> str:
    return f"area-cutoff/{round_id}/{area_key(area)}"


def area_round_id(round_id: str, area: str) -> str:
    """The area's own time for an area-timed round (issue 18): reminders, `late` and the escalation."""
    return f"area-round/{round_id}/{area_key(area)}"


def fanout_id(round_id: str, operation: str, token: str = "") -> str:
    return f"round-{operation}/{round_id}" + (f"/{token}" if token else "")


def duplicate_case_id(case_id: str) -> str:
    return f"duplicate/{case_id}"


def inbound_message_id(sha256: str) -> str:
    return f"inbound/{sha256}"


def inbound_intake_id(task_queue: str) -> str:
    """The one workflow that takes every received message of a task queue (a deployment) in batches."""
    return f"inbound-intake/{task_queue}"


def id_correction_id(ref: str) -> str:
    return f"id-correction/{ref}"


def dropout_id(request_id: str) -> str:
    return f"dropout/{request_id}"
