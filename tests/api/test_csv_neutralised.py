"""Every CSV credo writes neutralises cells a spreadsheet would run as formulas (issue 15,
item 5): hostile customer and invoice ids and names, imported through the real importer and
decided by a real run and the API, come out of the decisions export, the audit export and the
worklist CSV (API and console) with no cell starting with =, +, -, @, tab or carriage return,
while the JSON API keeps every id exact. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import signal
from datetime import date
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from console_support import sign_in

from api.cli.main import main
from api.csvout import FORMULA_STARTS, csv_chunks

HOSTILE_IDS = ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)")
HOSTILE_NAMES = ("\t=cmd|' /C calc'!A0", "\r+1", '=HYPERLINK("http://x","y")', "-2+3")
AS_OF = date(2024, 6, 3)


def _ledger(tmp_path):
    """A JSONL ledger: a customer per hostile id, named with a hostile name, with a hostile
    invoice id overdue since 2024-05-01; and two customers whose ids start with a tab or a
    carriage return (refused: an id cannot start with a space)."""
    records = []
    for number, (customer_id, name) in enumerate(zip(HOSTILE_IDS, HOSTILE_NAMES, strict=True)):
        records.append(
            {"type": "customer", "id": customer_id, "name": name, "segment": "@seg",
             "currency": "EUR", "credit_limit": "5000.00", "since": "2020-01-01"}
        )  # fmt: skip
        records.append(
            {"type": "invoice", "id": f"={number}+1", "customer_id": customer_id,
             "issue_date": "2024-04-01", "due_date": "2024-05-01", "amount": "700.00"}
        )  # fmt: skip
    for bad in ("\tTAB", "\rCR"):
        records.append({**records[0], "id": bad})
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_neutral(text: str, where: str) -> list[list[str]]:
    rows = _cells(text)
    assert len(rows) > 1, where
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (where, cell)
    return rows


@pytest.fixture
def night(settings, client, auth, tmp_path, monkeypatch):
    """The hostile ledger imported by `credo import`, a run of AS_OF by `credo run` and a
    credit decision per hostile customer through the API; the run's id."""
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CREDO_RUN_WORKERS", "1")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    runner = CliRunner()
    try:
        imported = runner.invoke(main, ["import", str(_ledger(tmp_path)), "--json"])
        report = json.loads(imported.stdout)
        assert report["inserted"] == 8, report
        assert [(r["id"], list(r["errors"])) for r in report["rejected"]] == [
            ("\tTAB", ["id"]),
            ("\rCR", ["id"]),
        ]
        ran = runner.invoke(main, ["run", "--as-of", AS_OF.isoformat(), "--json"])
        assert ran.exit_code == 0, ran.output
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    for customer_id in HOSTILE_IDS:
        body = {"customer_id": customer_id, "as_of": "2024-06-03", "facts": {"requested_amount": 1}}
        answer = client.post("/v1/decisions/credit", json=body, headers=auth("decide"))
        assert answer.status_code == 201, answer.json
        assert answer.json["customer_id"] == customer_id  # exact in JSON
    return json.loads(ran.stdout)["run_id"]


def test_no_exported_cell_starts_a_formula_and_json_keeps_ids_exact(night, client, auth, app, keys):
    auditor = auth("auditor")
    paths = {
        "GET /v1/decisions/export": ("/v1/decisions/export?format=csv", auditor),
        "GET /v1/audit/export": ("/v1/audit/export?format=csv", auditor),
        "GET /v1/runs/{id}/actions": (f"/v1/runs/{night}/actions?format=csv", auth("decide")),
    }
    texts = {}
    for where, (path, headers) in paths.items():
        with client.get(path, headers=headers) as response:  # streamed: read each to its end
            texts[where] = response.get_data(as_text=True)
    cli = CliRunner().invoke(main, ["audit", "export", "--format", "csv"])
    texts["credo audit export"] = cli.stdout_bytes.decode("utf-8")
    console = app.test_client()
    sign_in(console, keys["admin"])
    with console.get(f"/console/runs/{night}/worklist.csv") as response:
        texts["console worklist.csv"] = response.get_data(as_text=True)
    for where, text in texts.items():
        rows = _assert_neutral(text, where)
        found = {cell[1:] for row in rows for cell in row if cell.startswith("'")}
        assert set(HOSTILE_IDS) <= found, (where, found)  # there, behind the apostrophe

    # the decisions: 4 credit decisions by the API, 3 kinds x 4 customers by the run
    decision_rows = _cells(texts["GET /v1/decisions/export"])
    assert len(decision_rows) == 1 + 4 + 12
    assert decision_rows == _cells(texts["GET /v1/audit/export"])

    # the worklist CSV carries each action's id, the one its JSON gives
    worklist = list(csv.DictReader(io.StringIO(texts["GET /v1/runs/{id}/actions"], newline="")))
    actions = client.get(f"/v1/runs/{night}/actions?limit=100", headers=auth("decide")).json
    assert [int(row["action_id"]) for row in worklist] == [a["action_id"] for a in actions["items"]]
    assert {a["customer_id"] for a in actions["items"]} == set(HOSTILE_IDS)  # exact in JSON
    for row, action in zip(worklist, actions["items"], strict=True):
        assert row["customer_id"] == "'" + action["customer_id"]

    # the JSON API finds and returns every id exactly
    for customer_id in HOSTILE_IDS:
        page = client.get(
            f"/v1/decisions?customer_id={quote(customer_id)}&kind=credit", headers=auditor
        ).json
        assert {d["customer_id"] for d in page["items"]} == {customer_id}
    with client.get("/v1/audit/export?format=jsonl", headers=auditor) as response:
        jsonl = response.get_data(as_text=True)
    exact = {json.loads(line)["record"]["customer_id"] for line in jsonl.splitlines()}
    assert exact == set(HOSTILE_IDS)


def test_key_names_that_a_spreadsheet_would_run_are_refused():
    from storage.keys import check_name

    for name in HOSTILE_IDS:
        with pytest.raises(ValueError, match="must start with a letter, digit or '_'"):
            check_name("name", name)
    for name in ("\tTAB", "\rCR"):  # surrounding whitespace is dropped
        assert not check_name("name", name).startswith(FORMULA_STARTS)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", '"\'\rx"'),
        ("=a|b", "'=a\\|b"),
        ("%1", "'%1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (-2, "-2"),  # a number is no formula
        (None, ""),
    ],
)
def test_the_one_csv_writer_neutralises_formula_cells(value, written):
    header, row = list(csv_chunks(["h", "=h2"], [[value, "z"]]))
    assert header == "h,'=h2\r\n" and row == written + ",z\r\n"
