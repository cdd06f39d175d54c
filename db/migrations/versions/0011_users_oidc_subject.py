"""users: the OpenID Connect issuer and subject an account is bound to (single sign-on, web/oidc.py)

Revision ID: 0011
Revises: 0013 (merged after it; the three are independent)
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.create_index('ix_users_oidc', ['oidc_issuer', 'oidc_subject'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_oidc')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('oidc_issuer')
