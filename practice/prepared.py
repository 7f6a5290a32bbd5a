"""Statements on the sign-in path, their SQL built once per kind of database.

peewee builds a statement's SQL anew at every call, and for the few statements each
sign-in runs that cost more than the database took to run them. A Prepared statement is
built once with named slots (`slot("token_hash")`) where the values go, then run with the
values. Values are given as the database takes them: ids rather than model instances.
An INSERT must name every column it writes: a default computed when the SQL is built
(`default=utcnow`) would otherwise be frozen into it.
"""
from peewee import DateTimeField, ModelInsert, Value

from .models import db, is_sqlite, value_from_db


class _Slot:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def slot(name: str) -> Value:
    """Where the value named `name` goes; taken as given, not converted by the field."""
    return Value(_Slot(name), converter=False)


class Prepared:
    def __init__(self, build):
        self._build = build  # () -> a peewee query whose values are slots
        self._built = {}  # type of database -> (query, sql, params)

    def _for_this_database(self):
        key = type(db.obj)
        built = self._built.get(key)
        if built is None:
            query = self._build()
            _check_insert_names_defaults(query)
            sql, params = query.sql()
            built = self._built[key] = (query, sql, params)
        return built

    def _run(self, values: dict):
        query, sql, params = self._for_this_database()
        return query, db.execute_sql(sql, [values[p.name] if isinstance(p, _Slot) else p for p in params])

    def first(self, **values):
        """A SELECT's first row, as peewee would make it (joined models included), or None."""
        query, cursor = self._run(values)
        row = cursor.fetchone()
        cursor.close()  # an unfinished SQLite statement would hold its read snapshot open
        if row is None:
            return None
        if is_sqlite():  # SQLite hands back text; parse the timestamps the quick way first
            row = list(row)
            for index, column in self._datetime_columns(query):
                row[index] = value_from_db(column, row[index])
        for made in query._get_cursor_wrapper(_OneRow(cursor.description, tuple(row))):
            return made
        return None

    @staticmethod
    def _datetime_columns(query) -> list[tuple[int, DateTimeField]]:
        return [(index, column) for index, column in enumerate(query._returning) if isinstance(column, DateTimeField)]

    def rows_affected(self, **values) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        return self._run(values)[1].rowcount

    def insert(self, **values) -> int:
        """Run an INSERT; the new row's id."""
        cursor = self._run(values)[1]
        return cursor.lastrowid if is_sqlite() else cursor.fetchone()[0]


def _check_insert_names_defaults(query) -> None:
    if isinstance(query, ModelInsert):
        named = set(query._insert)
        frozen = [field.name for field in query.model._meta.sorted_fields
                  if field.default is not None and field not in named]
        if frozen:
            raise ValueError(f"a prepared INSERT into {query.model.__name__} must name {frozen}: "
                             "their defaults would be computed once, when its SQL is built")


class _OneRow:
    """The cursor peewee's row reader reads: one row already fetched."""

    def __init__(self, description, row):
        self.description = description
        self._rows = [row]

    def fetchone(self):
        return self._rows.pop() if self._rows else None

    def close(self):
        pass
