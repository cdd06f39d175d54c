"""web sessions, bearer token expiry

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa
import sqlmodel
import db.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Tokens issued before this revision had no expiry: they get the default lifetime (dmcflow/settings.py
# token_lifetime_days, 180 days) from the upgrade, so nothing stops working at once. Frozen here on purpose:
# a migration must not change meaning when the setting changes later.
EXISTING_TOKENS_DAYS = 180


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('csrf_secret', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', db.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', db.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', db.types.AwareDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', db.types.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_expires_at', db.types.AwareDateTime(timezone=True), nullable=True))
    users = sa.table('users', sa.column('token_expires_at', db.types.AwareDateTime(timezone=True)))
    op.execute(users.update().values(
        token_expires_at=datetime.now(timezone.utc) + timedelta(days=EXISTING_TOKENS_DAYS)))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('token_expires_at', existing_type=db.types.AwareDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_expires_at')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))
    op.drop_table('web_sessions')
