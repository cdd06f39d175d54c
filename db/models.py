"""Tables. Personal data (national IDs, names) lives here and only here."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.types import AwareDateTime


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Area(SQLModel, table=True):
    __tablename__ = "areas"
    name: str = Field(primary_key=True, max_length=120)


class School(SQLModel, table=True):
    __tablename__ = "schools"
    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    area: str = Field(foreign_key="areas.name", index=True, max_length=120)
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    director_name: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))


class SchoolEmail(SQLModel, table=True):
    """The school's registered addresses: mail from them is trusted, reminders go to them."""

    __tablename__ = "school_emails"
    __table_args__ = (UniqueConstraint("school_code", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    school_code: str = Field(foreign_key="schools.code", index=True, max_length=10)
    email: str = Field(index=True, max_length=254)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_oidc", "oidc_issuer", "oidc_subject", unique=True),)
    id: str = Field(primary_key=True, max_length=40)
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, index=True, max_length=254)  # the registered address: links go only here
    role: str = Field(index=True, max_length=20)
    school_code: str | None = Field(default=None, foreign_key="schools.code", index=True, max_length=10)
    area: str | None = Field(default=None, foreign_key="areas.name", index=True, max_length=120)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    # the bearer token stops working at this instant (`dmcflow users rotate-token` issues a new one)
    token_expires_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    active: bool = True  # `dmcflow users disable`: the token and every web session stop working at once
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))
    # the login page's user name (lower case; None: a token-only user) and its Argon2id hash (None: no password
    # set yet, the one-time link of db/accounts.py sets it)
    username: str | None = Field(default=None, unique=True, index=True, max_length=64)
    password_hash: str | None = Field(default=None, max_length=255)
    password_changed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    # single sign-on (web/oidc.py): the provider's issuer and subject, bound at the first sign-in through it
    oidc_issuer: str | None = Field(default=None, max_length=255)
    oidc_subject: str | None = Field(default=None, max_length=255)


class PasswordLink(SQLModel, table=True):
    """A one-time link to set a password (a new account, or "forgot password"), mailed to the registered email.

    Only the SHA-256 of the link's random token is kept; a link works once, until `expires_at`, and a newer
    link of the same user supersedes it."""

    __tablename__ = "password_links"
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    purpose: str = Field(max_length=10)  # welcome | reset
    created_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class WebSession(SQLModel, table=True):
    """A browser's signed-in session (today the dashboard's token login; a password login can create the same).

    The cookie carries a random id; only its SHA-256 is stored, so a copy of this table opens no session.
    It ends at `expires_at` (absolute), after the idle time since `last_seen_at`, or when revoked."""

    __tablename__ = "web_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    csrf_secret: str = Field(max_length=64)  # the page's forms carry it; a POST without it is refused
    created_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class Round(SQLModel, table=True):
    __tablename__ = "rounds"
    id: str = Field(primary_key=True, max_length=40)
    academic_year: int
    opens_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    confirm_from: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    cutoff_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    # R7: the final exam's date; None: the round's opening day (domain.rounds.RoundSpec.exam_date)
    final_exam_on: date | None = None
    policy: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    # issue 18: set when the round started area-timed (its areas keep its time): the task queue its schools' workflows
    # start on, each on its first event. None for a round started before: every school started at once, own timers.
    school_queue: str | None = Field(default=None, max_length=100)


class SchoolRound(SQLModel, table=True):
    """Projection of each SchoolRoundWorkflow, written by its activities, read by the API."""

    __tablename__ = "school_rounds"
    __table_args__ = (Index("ix_school_rounds_round_area", "round_id", "area"),)
    round_id: str = Field(foreign_key="rounds.id", primary_key=True, max_length=40)
    school_code: str = Field(foreign_key="schools.code", primary_key=True, max_length=10)
    area: str = Field(max_length=120)
    stage: str = Field(max_length=30)
    opens_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    confirm_from: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    cutoff_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    confirmed_by: str | None = Field(default=None, max_length=40)
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    certified_by: str | None = Field(default=None, max_length=40)
    certified_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    # R11: the existence counts the staff's confirmation confirmed (students, present, exceptions by kind)
    confirmed_counts: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    gate: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    blocking: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    escalated_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    version: int = 0  # the workflow's own counter: an older projection never overwrites a newer one
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))


class Student(SQLModel, table=True):
    __tablename__ = "students"
    # (school_code, student_id) serves every per-school query; no index on status alone: SQLite, without
    # statistics, would prefer it and scan every studying student of the country (migration 0013)
    __table_args__ = (UniqueConstraint("school_code", "student_id"),)
    id: int | None = Field(default=None, primary_key=True)
    school_code: str = Field(foreign_key="schools.code", max_length=10)
    student_id: str = Field(index=True, max_length=13, description="national ID or G-code, normalised")
    student_no: str = Field(default="", max_length=20)
    prefix: str = Field(default="", max_length=40)
    first_name: str = Field(max_length=120)
    last_name: str = Field(max_length=120)
    gender: str = Field(default="", max_length=4)
    grade: str = Field(max_length=4)
    classroom: str = Field(default="", max_length=10)
    birth_date: date | None = None
    sat_final_exam: bool = True
    left_on: date | None = None  # R7: the day a student who left before the final exam left (transferred out)
    status: str = Field(default="studying", max_length=20)
    status_reason: str | None = Field(default=None, max_length=40)  # e.g. the dropout category (R8)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))


class EndOfYearRecord(SQLModel, table=True):
    __tablename__ = "end_of_year_records"
    round_id: str = Field(foreign_key="rounds.id", primary_key=True, max_length=40)
    student_pk: int = Field(foreign_key="students.id", primary_key=True)
    result: str | None = Field(default=None, max_length=20)
    years_studied: int | None = None
    reasons: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    destination: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=500)
    updated_by: str = Field(max_length=40)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))


class ExistenceMark(SQLModel, table=True):
    """R11: one student's existence at the school in one round, as the school's staff confirmed it.

    Part of the roster: written only through the school's workflow (a roster batch), so frozen with it."""

    __tablename__ = "existence_marks"
    round_id: str = Field(foreign_key="rounds.id", primary_key=True, max_length=40)
    student_pk: int = Field(foreign_key="students.id", primary_key=True)
    mark: str = Field(max_length=20)  # present | exception (domain.existence.Mark)
    exception_kind: str | None = Field(default=None, max_length=30)  # domain.existence.ExceptionKind
    case_ref: str | None = Field(default=None, max_length=40)  # the dropout request or duplicate case it stands on
    note: str | None = Field(default=None, max_length=500)
    marked_by: str = Field(max_length=40)
    marked_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))


class RosterBatch(SQLModel, table=True):
    """A roster change staged by the API and applied by the school's workflow.

    The workflow sees only the batch id, so no national ID or name ever enters a workflow history.
    """

    __tablename__ = "roster_batches"
    id: str = Field(primary_key=True, max_length=40)
    round_id: str = Field(foreign_key="rounds.id", index=True, max_length=40)
    school_code: str = Field(foreign_key="schools.code", index=True, max_length=10)
    kind: str = Field(max_length=20)  # import | end_of_year
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="staged", max_length=20)  # staged | applied | refused
    report: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))
    applied_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_round_school", "round_id", "school_code"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200, description="idempotency key: a retried activity writes once")
    at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    actor: str = Field(max_length=40)  # a user id, or "system"
    action: str = Field(max_length=60)
    round_id: str | None = Field(default=None, max_length=40)
    school_code: str | None = Field(default=None, max_length=10)
    area: str | None = Field(default=None, max_length=120)
    before: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    after: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    reason: str | None = Field(default=None, max_length=1000)


class OutboxMail(SQLModel, table=True):
    """Every outgoing email, keyed so that a retried activity never sends the same mail twice."""

    __tablename__ = "outbox_mail"
    key: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=40)
    recipients: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=250)
    in_reply_to: str | None = Field(default=None, max_length=250)
    status: str = Field(default="pending", max_length=20)  # pending | sent
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class DuplicateCase(SQLModel, table=True):
    """R3: one student counted twice. Holds the personal data the case workflow never sees."""

    __tablename__ = "duplicate_cases"
    id: str = Field(primary_key=True, max_length=40)
    round_id: str = Field(foreign_key="rounds.id", index=True, max_length=40)
    kind: str = Field(max_length=20)  # obec | affiliation
    student_pk: int = Field(foreign_key="students.id", index=True)
    student_id: str = Field(max_length=13)
    holder_school: str = Field(foreign_key="schools.code", index=True, max_length=10)
    claimant_school: str | None = Field(default=None, foreign_key="schools.code", index=True, max_length=10)
    agency: str | None = Field(default=None, max_length=20)
    pending: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # claimed (a school's claim, waiting for the holder area's district) | open | resolved
    status: str = Field(default="open", index=True, max_length=20)
    declarations: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    decision: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    outcome: str | None = Field(default=None, max_length=20)  # the school that keeps the student, or "none"
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class EvidenceFile(SQLModel, table=True):
    """Evidence, content-addressed: the same file stored twice is one row. Never rendered on the server."""

    __tablename__ = "evidence_files"
    sha256: str = Field(primary_key=True, max_length=64)
    content_type: str = Field(max_length=100)
    size: int
    filename: str = Field(default="", max_length=255)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))



class InboundMessage(SQLModel, table=True):
    """An email received for the ID-correction intake (R4), stored raw before anything else happens.

    Content-addressed: the same bytes delivered twice are one row. The Message-ID is kept to recognise
    the same message arriving again with other bytes (another relay, another mailbox)."""

    __tablename__ = "inbound_messages"
    sha256: str = Field(primary_key=True, max_length=64)
    message_id: str | None = Field(default=None, index=True, max_length=250)
    via: str = Field(max_length=10)  # smtp | imap
    received_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    size: int
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    truncated: bool = False  # over the size limit: only the head is kept, enough to reply
    status: str = Field(default="stored", index=True, max_length=20)  # stored | processed | duplicate | refused
    sender: str | None = Field(default=None, max_length=254)
    # the From domain as authenticated at the door (DKIM verified, or the trusted relay's dmarc=pass), and how;
    # None: not authenticated, so the message is only kept (status refused) and listed for the district
    auth_domain: str | None = Field(default=None, max_length=253)
    auth_method: str | None = Field(default=None, max_length=10)  # dkim | relay
    client_address: str | None = Field(default=None, max_length=64)  # the SMTP peer (None over IMAP)
    area: str | None = Field(default=None, index=True, max_length=120)  # whose district lists a refused message
    school_code: str | None = Field(default=None, index=True, max_length=10)
    round_id: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=60)
    evidence: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    processed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class IdCorrection(SQLModel, table=True):
    """One request block of an ID-correction email, with its reference number and its fate."""

    __tablename__ = "id_corrections"
    __table_args__ = (Index("ix_id_corrections_round_school", "round_id", "school_code"),)
    id: str = Field(primary_key=True, max_length=20)  # the reference number told to the school
    message_sha: str = Field(foreign_key="inbound_messages.sha256", index=True, max_length=64)
    block: int
    round_id: str | None = Field(default=None, max_length=40)
    school_code: str | None = Field(default=None, max_length=10)
    area: str | None = Field(default=None, index=True, max_length=120)
    student_pk: int | None = Field(default=None, foreign_key="students.id")
    student_name: str | None = Field(default=None, max_length=250)
    old_id: str | None = Field(default=None, max_length=13)
    new_id: str | None = Field(default=None, max_length=13)
    reason: str | None = Field(default=None, max_length=1000)
    status: str = Field(index=True, max_length=20)  # refused | pending | approved | rejected | expired | failed
    refusal_code: str | None = Field(default=None, max_length=60)
    refusal_th: str | None = Field(default=None, max_length=500)
    refusal_en: str | None = Field(default=None, max_length=500)
    cutoff_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    decision_reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime(), nullable=False))


class DeferredRosterChange(SQLModel, table=True):
    """An outcome decided after the school certified its roster (an approved ID correction, a duplicate case's
    outcome): the certified roster stays as certified; the next round's start applies it (db/deferred_changes.py)."""

    __tablename__ = "deferred_roster_changes"
    key: str = Field(primary_key=True, max_length=80)  # idc/<ref>, dup/<case>/leave, dup/<case>/add
    round_id: str = Field(foreign_key="rounds.id", index=True, max_length=40)  # the round the school certified
    school_code: str = Field(foreign_key="schools.code", index=True, max_length=10)
    area: str = Field(max_length=120)
    kind: str = Field(max_length=30)  # id_correction | duplicate_leave | duplicate_add
    source: str = Field(index=True, max_length=40)  # the request's reference, or the duplicate case's id
    student_pk: int | None = Field(default=None, foreign_key="students.id")
    change: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", index=True, max_length=20)  # pending | applied | failed
    note: str | None = Field(default=None, max_length=60)  # why it could not be applied (a refusal code)
    decided_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    applied_round_id: str | None = Field(default=None, max_length=40)
    applied_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class DropoutRequest(SQLModel, table=True):
    """R8: a school's request to record a student as dropped out, decided by the district.

    Holds everything personal or free-text (the student, the details, the thread); the consultation
    workflow sees only the request id, the school, the category and who acted when."""

    __tablename__ = "dropout_requests"
    __table_args__ = (Index("ix_dropout_requests_round_school", "round_id", "school_code"),)
    id: str = Field(primary_key=True, max_length=40)
    round_id: str = Field(foreign_key="rounds.id", index=True, max_length=40)
    school_code: str = Field(foreign_key="schools.code", max_length=10)
    area: str = Field(index=True, max_length=120)
    student_pk: int = Field(foreign_key="students.id", index=True)
    reason: str = Field(max_length=40)  # a ministry dropout category (domain.dropouts.REASONS)
    details: str = Field(default="", sa_column=Column(Text, nullable=False))
    evidence: str | None = Field(default=None, max_length=64)  # sha256 of an evidence file
    # starting | waiting_district | waiting_school | approved | rejected | expired | failed
    status: str = Field(default="starting", index=True, max_length=20)
    requested_by: str = Field(max_length=40)
    requested_at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime(), nullable=True))


class DropoutMessage(SQLModel, table=True):
    """One entry of a consultation's thread: the request, a question, an answer, the decision.

    Written staged by the API before the workflow accepts it, posted when it does, deleted when it refuses."""

    __tablename__ = "dropout_messages"
    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="dropout_requests.id", index=True, max_length=40)
    kind: str = Field(max_length=20)  # request | question | answer | note | approve | reject | expired
    side: str = Field(max_length=10)  # school | district | system
    author: str | None = Field(default=None, max_length=40)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    evidence: str | None = Field(default=None, max_length=64)
    posted: bool = False
    at: datetime = Field(sa_column=Column(AwareDateTime(), nullable=False))
