"""Outcomes decided after a school certified: kept for the next round's start (issue 16)

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import db.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deferred_roster_changes',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('round_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('school_code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('area', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=True),
    sa.Column('change', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('decided_at', db.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('applied_round_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('applied_at', db.types.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ),
    sa.ForeignKeyConstraint(['school_code'], ['schools.code'], ),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], ),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('deferred_roster_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deferred_roster_changes_round_id'), ['round_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deferred_roster_changes_school_code'), ['school_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_deferred_roster_changes_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_deferred_roster_changes_status'), ['status'], unique=False)


def downgrade() -> None:
    op.drop_table('deferred_roster_changes')
