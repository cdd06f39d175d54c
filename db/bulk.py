"""Set-based writes and reads for imports: many rows into tables inside the session's transaction (COPY on
PostgreSQL, one executemany on SQLite), and rows looked up by a long list of values.

A 60,000-row import writes 60,000 students and as many audit events. Through SQLAlchemy's executemany
each row's parameters are processed one by one, and psycopg then sends one INSERT per row: COPY takes a
quarter of the time. Values still pass through the columns' own bind processors (aware instants, JSON,
dates), exactly as an INSERT through SQLAlchemy would store them; a value every row shares (the batch's
instant, actor, school) is converted once.
"""

from __future__ import annotations

import operator
from itertools import repeat
from operator import itemgetter

from sqlalchemy import ARRAY, Table, any_, bindparam
from sqlmodel import Session


def insert_rows(session: Session, *tables: tuple[Table, list[dict]]) -> None:
    """Each `(table, rows)` in turn, `rows` being dicts with the same keys, each a column of the table. Every
    value is converted before the first row is written: SQLite's one write lock is then held for the writes
    alone, not for the Python work of preparing them."""
    connection = session.connection()
    prepared = [_prepared(connection.dialect, table, rows) for table, rows in tables if rows]
    for target, lines in prepared:
        if connection.dialect.name == "postgresql":
            with connection.connection.driver_connection.cursor() as cursor, \
                    cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for line in lines:
                    copy.write_row(line)
        else:
            connection.exec_driver_sql(f"INSERT INTO {target} VALUES ({', '.join('?' * len(lines[0]))})", lines)


def _prepared(dialect, table: Table, rows: list[dict]) -> tuple[str, list[tuple]]:
    """`table (columns)` and each row's values as the driver takes them, converted column by column."""
    if dialect.name != "postgresql" and dialect.paramstyle != "qmark":
        raise NotImplementedError(f"insert_rows: {dialect.name} ({dialect.paramstyle})")
    names = list(rows[0])
    columns = []
    for name in names:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        values = list(map(itemgetter(name), rows))
        first = values[0]
        if all(map(operator.is_, values, repeat(first))):  # one object in every row: converted once
            columns.append(repeat(first if process is None else process(first), len(values)))
        else:
            columns.append(values if process is None else list(map(process, values)))
    quote = dialect.identifier_preparer.quote
    return (f"{dialect.identifier_preparer.format_table(table)} ({', '.join(quote(name) for name in names)})",
            list(zip(*columns, strict=True)))


def select_in(session: Session, statement, column, values: list, chunk: int = 500) -> list:
    """`statement` where `column` is one of `values`, however many: on PostgreSQL one query with the values
    as one array (an IN list is a bind and a type cast per value for SQLAlchemy to compile and psycopg to
    parse: seconds for the 60,000 IDs of a first import), elsewhere IN lists of `chunk` values."""
    if not values:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.exec(statement.where(column == any_(bindparam(None, list(values), type_=ARRAY(column.type))))))
    found: list = []
    for start in range(0, len(values), chunk):
        found += session.exec(statement.where(column.in_(values[start:start + chunk]))).all()
    return found
