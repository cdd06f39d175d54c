"""intake: sender authentication, client address and the refused mail's district

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_domain', sqlmodel.sql.sqltypes.AutoString(length=253), nullable=True))
        batch_op.add_column(sa.Column('auth_method', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column('client_address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('area', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.create_index(batch_op.f('ix_inbound_messages_area'), ['area'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_area'))
        batch_op.drop_column('area')
        batch_op.drop_column('client_address')
        batch_op.drop_column('auth_method')
        batch_op.drop_column('auth_domain')
