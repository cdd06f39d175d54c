"""What waits for a district's area (every area, for an administrator) in a round, one statement per kind.

The officer's home counts these (web/homes.py `work_queue`) and the work queue lists them
(web/district_pages.py `queue_items`): both take the statement from here with the columns they need, so the
home's counts are the queue's rows. `area` None: every area.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from db.duplicates import CLAIMED, OPEN_STATUSES
from db.models import DropoutRequest, DuplicateCase, IdCorrection, School, SchoolRound

DUPLICATE_STATUSES = (CLAIMED, *OPEN_STATUSES)  # a claim to open or dismiss, a case without its outcome


def _in_area(stmt, column, area: str | None):
    return stmt.where(column == area) if area is not None else stmt


def id_corrections(columns, round_id: str, area: str | None):
    """R4: mailed requests waiting for the district's decision."""
    return _in_area(select(*columns).select_from(IdCorrection)
                    .where(IdCorrection.round_id == round_id, IdCorrection.status == "pending"), IdCorrection.area, area)


def dropouts(columns, round_id: str, area: str | None):
    """R8: consultations whose turn is the district's."""
    return _in_area(select(*columns).select_from(DropoutRequest)
                    .where(DropoutRequest.round_id == round_id, DropoutRequest.status == "waiting_district"),
                    DropoutRequest.area, area)


def duplicates(columns, round_id: str, area: str | None):
    """R3: a claim is the holder's district's until it opens the case (issue 15); an open case is both
    districts' until its outcome."""
    holder, claimant = aliased(School), aliased(School)
    stmt = (select(*columns).select_from(DuplicateCase)
            .join(holder, holder.code == DuplicateCase.holder_school)
            .outerjoin(claimant, claimant.code == DuplicateCase.claimant_school)
            .where(DuplicateCase.round_id == round_id, DuplicateCase.status.in_(DUPLICATE_STATUSES)))
    if area is not None:
        stmt = stmt.where(or_(holder.area == area, and_(claimant.area == area, DuplicateCase.status != CLAIMED)))
    return stmt


def late_schools(columns, round_id: str, area: str | None, now: datetime):
    """Schools past their cutoff without the director's certification: an extension is the district's to give."""
    return _in_area(select(*columns).select_from(SchoolRound)
                    .where(SchoolRound.round_id == round_id, SchoolRound.certified_at.is_(None),
                           SchoolRound.cutoff_at <= now), SchoolRound.area, area)
