"""Statements on the sign-in path, their SQL built once per kind of database.

peewee builds a statement's SQL anew at every call, and for the few statements each
sign-in runs that cost more than the database took to run them. A Prepared statement is
built once with named slots (`slot("token_hash")`) where the values go, then run with the
values. Values are given as the database takes them: ids rather than model instances.
An INSERT gives every value as a slot: a default computed when the SQL is built
(`default=utcnow`) would otherwise be frozen into it. Only peewee's public API: a query's
sql() and selected_columns, Value, the database's execute_sql, and model constructors.
"""
from peewee import Field, ModelInsert, ModelSelect, Value

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
        self._built = {}  # type of database -> (sql, params, selected fields)

    def _for_this_database(self):
        key = type(db.obj)
        built = self._built.get(key)
        if built is None:
            query = self._build()
            sql, params = query.sql()
            built = self._built[key] = (sql, params, _checked(query, params))
        return built

    def _run(self, values: dict):
        sql, params, fields = self._for_this_database()
        return fields, db.execute_sql(sql, [values[p.name] if isinstance(p, _Slot) else p for p in params])

    def first(self, **values) -> list | None:
        """A SELECT's first row as model instances, one per model it selects, in order; or None."""
        fields, cursor = self._run(values)
        row = cursor.fetchone()
        cursor.close()  # an unfinished SQLite statement would hold its read snapshot open
        return None if row is None else _made(fields, row)

    def all(self, **values) -> list[list]:
        """Every row of a SELECT, each as first() gives it."""
        fields, cursor = self._run(values)
        rows = cursor.fetchall()
        cursor.close()
        return [_made(fields, row) for row in rows]

    def rows_affected(self, **values) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        return self._run(values)[1].rowcount

    def insert(self, **values) -> int:
        """Run an INSERT; the new row's id."""
        cursor = self._run(values)[1]
        return cursor.lastrowid if is_sqlite() else cursor.fetchone()[0]


def _made(fields, row) -> list:
    made, model, data = [], None, {}
    for field, value in zip(fields, row):
        if field.model is not model:
            if model is not None:
                made.append(model(**data))
            model, data = field.model, {}
        data[field.name] = value_from_db(field, value)
    made.append(model(**data))
    return made


def db_values(fields, values: dict) -> dict:
    """`values` (by field name) as the database takes them, each through its field: ids for
    model instances, sealed text sealed (what peewee does for a query it builds)."""
    return {field.name: field.db_value(values[field.name]) for field in fields}


def _checked(query, params) -> list:
    """The fields a SELECT reads, in the row's order; refuses what a built-once SQL would get wrong."""
    if isinstance(query, ModelInsert) and not all(isinstance(param, _Slot) for param in params):
        # A default computed when the SQL is built (default=utcnow) would be frozen into it.
        raise ValueError(f"a prepared INSERT into {query.model.__name__} must give every value it writes "
                         "as a slot: a default would be computed once, when its SQL is built")
    if not isinstance(query, ModelSelect):
        return []
    fields = list(query.selected_columns)
    if not all(isinstance(field, Field) for field in fields):
        raise ValueError("a prepared SELECT reads fields only (whole models or their fields)")
    return fields
