"""Client search on an index (SQLite: a trigram FTS5 table; PostgreSQL: pg_trgm), finding what
the plain "contains, any case" search found: the text anywhere in the name, email or phone."""
import pytest

from practice.clients import add_client, archive_client, find_clients, update_client
from practice.models import db, is_sqlite

pytestmark = pytest.mark.usefixtures("traveller")


@pytest.fixture
def people(app, dana):
    return {
        "alex": add_client("alex.morgan@example.com", "Alex Morgan", phone="+44 20 7946 0958"),
        "sam": add_client("sam@riverside.example", "Sam Rivera-O'Neil"),
        "noor": add_client("noor@example.org", 'Noor "Nini" Haddad', phone="020 7946 1234"),
    }


def found(dana, text: str) -> list[str]:
    return [c.name for c in find_clients(dana, text)]


@pytest.mark.parametrize("text, names", [
    ("morg", ["Alex Morgan"]),  # inside a word, any case
    ("ORGAN", ["Alex Morgan"]),
    ("rivera-o'", ["Sam Rivera-O'Neil"]),
    ("riverside", ["Sam Rivera-O'Neil"]),  # the email
    ("7946", ["Alex Morgan", 'Noor "Nini" Haddad']),  # the phone
    ('"Nini"', ['Noor "Nini" Haddad']),  # quotes are text, not search syntax
    ("Nini OR Alex", []),
    ("a", ["Alex Morgan", 'Noor "Nini" Haddad', "Sam Rivera-O'Neil"]),  # under three letters: still found
    ("dd", ['Noor "Nini" Haddad']),
    ("example", ["Alex Morgan", 'Noor "Nini" Haddad', "Sam Rivera-O'Neil"]),
    ("nobody", []),
    ("MORGAN@EXAMPLE", ["Alex Morgan"]),
    ("Morgan alex", []),  # the end of one field and the start of the next are not one text
    ("morganalex", []),
    ("a%e", []),  # LIKE's wildcards are text
    ("_ex", []),
])
def test_search_finds_the_text_anywhere_in_name_email_or_phone(dana, people, text, names):
    assert found(dana, text) == names


def test_search_follows_edits_and_keeps_archived_clients_apart(dana, people):
    update_client(people["alex"], email="alex@newmail.example", name="Alexandra Morgan-Lee", by=dana)
    archive_client(people["sam"], by=dana)

    assert found(dana, "morgan-lee") == ["Alexandra Morgan-Lee"]
    assert found(dana, "alex.morgan@") == []  # the old address is gone from the index
    assert found(dana, "rivera") == []
    assert [c.name for c in find_clients(dana, "rivera", archived=True)] == ["Sam Rivera-O'Neil"]


def test_the_search_reads_an_index_not_every_client(app, dana, people):
    query = find_clients(dana, "morgan")
    sql, params = query.sql()
    if is_sqlite():
        plan = " ".join(row[-1] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert "VIRTUAL TABLE INDEX" in plan and "SCAN t1" not in plan.replace("SCAN t1 USING", "")
    else:
        db.execute_sql("SET enable_seqscan = off")  # three rows: let the plan show what it can use
        try:
            plan = " ".join(row[0] for row in db.execute_sql("EXPLAIN " + sql, params).fetchall())
        finally:
            db.execute_sql("RESET enable_seqscan")
        assert "client_words_trigrams" in plan


def test_the_postgresql_index_takes_new_clients_at_once(app):
    """GIN's pending list (fastupdate) would hold imported clients until a VACUUM, and every
    search would read it all; one index over the three fields, the planner's choice."""
    if is_sqlite():
        pytest.skip("PostgreSQL's trigram index")
    options = dict(db.execute_sql("SELECT relname, reloptions FROM pg_class WHERE relname LIKE %s",
                                  ["client\\_%trigrams"]).fetchall())
    assert options == {"client_words_trigrams": ["fastupdate=off"]}
