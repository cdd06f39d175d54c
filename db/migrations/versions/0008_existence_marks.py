"""R11: every student's existence mark per round, and the counts a school's confirmation confirmed

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import db.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('existence_marks',
    sa.Column('round_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('mark', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('exception_kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('case_ref', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('marked_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('marked_at', db.types.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], ),
    sa.PrimaryKeyConstraint('round_id', 'student_pk')
    )
    with op.batch_alter_table('school_rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_counts', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('school_rounds', schema=None) as batch_op:
        batch_op.drop_column('confirmed_counts')
    op.drop_table('existence_marks')
