"""Many rows into one table inside the session's transaction: COPY on PostgreSQL, one executemany on SQLite.

A 60,000-row import writes 60,000 students and as many audit events. Through SQLAlchemy's executemany
each row's parameters are processed one by one, and psycopg then sends one INSERT per row: COPY takes a
quarter of the time. Values still pass through the columns' own bind processors (aware instants, JSON,
dates), exactly as an INSERT through SQLAlchemy would store them; a value every row shares (the batch's
instant, actor, school) is converted once.
"""

from __future__ import annotations

from sqlalchemy import ARRAY, Table, any_, bindparam
from sqlmodel import Session


def insert_rows(session: Session, table: Table, rows: list[dict]) -> None:
    """`rows`: dicts with the same keys, each a column of `table`."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    first = rows[0]
    names = list(first)
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    shared = {name: (first[name] if process is None else process(first[name]))
              for name, process in zip(names, processors, strict=True)
              if all(row[name] is first[name] for row in rows)}
    columns = [(name, process) for name, process in zip(names, processors, strict=True) if name not in shared]
    template = [shared.get(name) for name in names]
    slots = [names.index(name) for name, _ in columns]

    def values(row: dict) -> list:
        line = template.copy()
        for slot, (name, process) in zip(slots, columns, strict=True):
            line[slot] = row[name] if process is None else process(row[name])
        return line

    quote = dialect.identifier_preparer.quote
    target = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(quote(name) for name in names)})"
    if dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(values(row))
        return
    if dialect.paramstyle != "qmark":
        raise NotImplementedError(f"insert_rows: {dialect.name} ({dialect.paramstyle})")
    connection.exec_driver_sql(f"INSERT INTO {target} VALUES ({', '.join('?' * len(names))})",
                               [tuple(values(row)) for row in rows])


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
