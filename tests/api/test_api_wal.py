"""SQLite's upkeep under the API, after responses: the write-ahead log is checkpointed there,
not in commits, and staged decision tags are moved in batches."""

from __future__ import annotations

import os

import pytest
from api_support import complete_facts

from storage.db import is_postgres


@pytest.fixture
def wal(app):
    if is_postgres():
        pytest.skip("SQLite only: PostgreSQL checkpoints on its own")
    return app.extensions["credo.wal"]


def test_the_log_is_copied_back_after_responses_and_starts_again(client, auth, wal):
    from storage.db import database

    wal.pages, wal.min_interval = 40, 0.0
    log = database.obj.database + "-wal"
    assert database.obj.execute_sql("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    ids = []
    for n in range(60):  # about 12 pages each: 700 pages were the log never checkpointed
        response = client.post(
            "/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide")
        )
        assert response.status_code == 201
        response.close()  # a server closes the response once sent: the checkpoint starts then
        wal.wait()
        ids.append(response.json["decision_id"])
        # the setup's writes are in the log at first; from then on each checkpoint lets the
        # next commit start the log again
        assert n == 0 or wal.frames() < wal.pages + 30
    assert os.path.getsize(log) < 200 * (4096 + 24)  # the file is reused from its start
    wal.run()
    assert wal.frames() == 0 and not wal.due()  # copied whole: not due until more is written
    auditor = auth("auditor")
    for decision_id in (ids[0], ids[-1]):
        assert client.get(f"/v1/decisions/{decision_id}", headers=auditor).status_code == 200
    from storage.decisions import verify_chain

    assert verify_chain() == []


def test_the_writers_queue_for_a_second_checkpoint_only_once_the_log_is_long(client, auth, wal):
    """The second checkpoint, the one that lets the log start again while writers go on,
    takes the writers' queue; a short log is left for the next writer to start again."""
    import threading

    from api.http.writers import _writer_queue

    wal.min_interval = 0.0
    for _ in range(3):
        response = client.post(
            "/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide")
        )
        assert response.status_code == 201
        response.close()
        wal.wait()
    assert wal.length() > 0

    def run_while_a_writer_holds_the_queue() -> bool:
        """Whether run() waited for the queue (it ends only once the queue is free)."""
        done = threading.Event()
        with _writer_queue(wal.path):
            worker = threading.Thread(target=lambda: (wal.run(), done.set()))
            worker.start()
            finished_meanwhile = done.wait(1.0)
        worker.join(10)
        assert done.is_set()
        return not finished_meanwhile

    wal.restart_pages = wal.length() + 1
    assert not run_while_a_writer_holds_the_queue()
    wal.restart_pages = wal.length()
    assert run_while_a_writer_holds_the_queue()
    assert wal.frames() == 0


def test_no_log_yet_is_not_due(tmp_path):
    from api.http.writers import WalCheckpointer

    assert not WalCheckpointer(str(tmp_path / "nothing.db")).due()


def test_staged_tags_are_moved_in_batches_after_responses(client, auth, wal, app):
    from storage.decisions import DecisionFilter, count_decisions
    from storage.models import DecisionTag, RecentDecisionTag

    settler = app.extensions["credo.tags"]
    settler.batch = 5
    for n in range(1, 13):
        response = client.post(
            "/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide")
        )
        assert response.status_code == 201
        rules = {rule["id"] for rule in response.json["fired"]}
        response.close()
        settler.wait()
        staged = RecentDecisionTag.select(RecentDecisionTag.decision).distinct().count()
        assert staged == n % 5  # moved after the 5th and the 10th response
        for rule in rules:  # found wherever its tags are
            assert count_decisions(DecisionFilter(rule_id=rule)) == n
    assert DecisionTag.select(DecisionTag.decision).distinct().count() == 10
