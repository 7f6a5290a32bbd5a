"""Prepared statements (practice/prepared.py): SQL built once, rows read as peewee reads them."""
import pytest
from playhouse.shortcuts import model_to_dict

from practice.links import find_link, issue_link
from practice.models import AuditEvent, Client, Link
from practice.prepared import Prepared, slot



def test_a_prepared_select_reads_the_same_models_as_peewee(app, alex):
    issued = issue_link(alex, "clinician")
    link = find_link(issued.token)
    expected = Link.select(Link, Client).join(Client).where(Link.id == issued.link.id).get()
    assert model_to_dict(link, recurse=True) == model_to_dict(expected, recurse=True)
    assert isinstance(link.issued_at, type(expected.issued_at)) and link.client.email == "alex@example.com"


def test_a_prepared_insert_refuses_a_default_its_sql_would_freeze(app):
    # AuditEvent.detail defaults to "": built once, that value would be in every row's SQL.
    statement = Prepared(lambda: AuditEvent.insert(kind=slot("kind"), at=slot("at")))
    with pytest.raises(ValueError, match="slot"):
        statement.insert(kind="test", at=None)
