"""How a request's transaction ends on PostgreSQL (app.extensions.commit_read_only_requests):
one that only read with COMMIT, so that psycopg keeps the statements it prepared; one that
wrote without committing (through the ORM or raw SQL), or failed, with ROLLBACK, so that
nothing it wrote is kept; and the API's reads without a transaction at all
(app.extensions.reads_only)."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select, text

from app import models as m
from app.extensions import db, reads_only

#: The transactions under test are those of another app's own connections.
pytestmark = pytest.mark.committed


@pytest.fixture
def served(app, make_app):
    """A second app over the test's database with three probe routes; its requests each get
    their own app context (and so their own session and teardown), as under gunicorn. Yields
    (test client, the list of how each transaction ended)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's prepared statements are PostgreSQL's (TEST_DATABASE_URL)")
    portal = make_app()

    @portal.get("/_probe/read")
    def read():
        db.session.execute(select(m.Branch.id).where(m.Branch.code == "probe")).all()
        prepared = db.session.execute(text("SELECT count(*) FROM pg_prepared_statements"))
        return str(prepared.scalar())

    @portal.get("/_probe/write")
    def write_without_commit():
        db.session.add(m.Branch(code="probe", name="Проба", city="Краснодар"))
        db.session.flush()
        return "written"

    @portal.get("/_probe/raw-write")
    def write_raw_sql_without_commit():
        db.session.execute(text("INSERT INTO branch (code, name, city) "
                                "VALUES ('probe', 'Проба', 'Краснодар')"))
        db.session.execute(select(m.Branch.id)).all()  # a read after the write
        return "written"

    @portal.get("/_probe/fail")
    def fail_after_writing():
        db.session.add(m.Branch(code="probe", name="Проба", city="Краснодар"))
        db.session.flush()
        raise RuntimeError("the view failed after writing")

    def two_statements():
        """Whether the second of two statements ran in a transaction of its own."""
        db.session.execute(text("SELECT pg_sleep(0.002)")).all()
        return str(db.session.execute(text("SELECT now() = statement_timestamp()")).scalar())

    portal.add_url_rule("/_probe/snapshots", "snapshots", reads_only(lambda: two_statements()))
    portal.add_url_rule("/_probe/read-only", "read_only", reads_only(lambda: read()))
    portal.add_url_rule("/_probe/snapshots-in-a-transaction", "snapshots_in_a_transaction",
                        two_statements)

    ends: list[str] = []
    with portal.app_context():
        engine = db.engine
    event.listen(engine, "commit", lambda _conn: ends.append("commit"))
    event.listen(engine, "rollback", lambda _conn: ends.append("rollback"))
    yield portal.test_client(), ends


def probes(session) -> int:
    session.rollback()
    return session.execute(select(func.count()).select_from(m.Branch)
                            .where(m.Branch.code == "probe")).scalar_one()


def test_a_request_that_wrote_nothing_commits_and_keeps_prepared_statements(served):
    client, ends = served
    answers = [client.get("/_probe/read").get_data(as_text=True) for _ in range(8)]
    assert ends == ["commit"] * 8
    # psycopg prepares a statement on its fifth run on a connection; a ROLLBACK would have
    # made it forget them all again.
    assert int(answers[-1]) >= 2, answers


def test_a_request_that_wrote_without_committing_rolls_back(served, session):
    client, ends = served
    assert client.get("/_probe/write").get_data(as_text=True) == "written"
    assert ends == ["rollback"]
    assert probes(session) == 0


def test_a_request_that_wrote_with_raw_sql_rolls_back(served, session):
    client, ends = served
    assert client.get("/_probe/raw-write").get_data(as_text=True) == "written"
    assert ends == ["rollback"]
    assert probes(session) == 0
    assert client.get("/_probe/read").status_code == 200
    assert ends == ["rollback", "commit"]  # the write is not held against the next request


def test_a_failed_request_rolls_back(served, session):
    client, ends = served
    client.application.testing = False  # a 500 page, as served, not the exception
    assert client.get("/_probe/fail").status_code == 500
    assert ends == ["rollback"]
    assert probes(session) == 0


def test_a_read_only_route_runs_each_statement_on_its_own(served):
    client, _ends = served
    assert client.get("/_probe/snapshots").get_data(as_text=True) == "True"
    # Any other route: one transaction from the first statement to the end of the request.
    assert client.get("/_probe/snapshots-in-a-transaction").get_data(as_text=True) == "False"


def test_a_read_only_route_ends_without_commit_and_keeps_prepared_statements(served):
    client, ends = served
    answers = [client.get("/_probe/read-only").get_data(as_text=True) for _ in range(8)]
    assert "commit" not in ends
    assert int(answers[-1]) >= 2, answers
