"""The application database: sqlmodel tables, engine and sessions, Alembic migrations."""
