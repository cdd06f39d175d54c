"""students: drop the indexes on status and on school_code alone

The unique (school_code, student_id) index serves every per-school query. SQLite, without statistics,
preferred the index on status, so a school's gate, its roster page and the search for an imported ID on
other rosters read every studying student of the country; and each index costs every imported row.

Revision ID: 0013
Revises: 0010
"""
from alembic import op


revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_index('ix_students_status')
        batch_op.drop_index('ix_students_school_code')


def downgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.create_index('ix_students_school_code', ['school_code'], unique=False)
        batch_op.create_index('ix_students_status', ['status'], unique=False)
