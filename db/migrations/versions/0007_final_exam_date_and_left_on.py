"""R7: the round's final-exam date and the day a student left the school

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('final_exam_on', sa.Date(), nullable=True))
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_on', sa.Date(), nullable=True))
    # the shipped round of the letter (domain.rounds.ROUND_2566_3); other rounds fall back to their opening day
    op.execute("UPDATE rounds SET final_exam_on = '2024-03-29' WHERE id = '2566-3'")


def downgrade() -> None:
    with op.batch_alter_table('students', schema=None) as batch_op:
        batch_op.drop_column('left_on')
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('final_exam_on')
