"""`credo audit export` and GET /v1/audit/export (issue 15, item 5): one row per decision,
filtered by period, kind and customer; JSON lines from which an auditor's own script recomputes
the chain; CSV; streamed in constant memory; hostile query values 422 naming the parameter.
On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import json
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from api.cli.main import main

DAY = datetime(2024, 4, 15, 2, 0, tzinfo=UTC)


def decision(n: int, **changes) -> dict:
    """A decision record as the use cases hand it to storage: 7 customers, two kinds, one a
    day from DAY on."""
    kind = ("credit", "reminder")[n % 2]
    record = {
        "decision_id": f"dec-{n}",
        "kind": kind,
        "customer_id": f"C{n % 7}",
        "as_of": date(2024, 4, 15),
        "outcome": {"tone": ["friendly", "firm"][n % 3 % 2], "cadence_days": 7},
        "reasons": [f"reason {n}"],
        "fired": [
            {"id": "RT-040", "name": "Firm", "priority": 40, "reason": "r", "then": {}, "set": {}}
        ],
        "ruleset": {"kind": kind, "version": 1, "sha256": "ab" * 32},
        "facts": {"open_balance": Decimal("1200.5"), "utilization": 1 / 3, "days_past_due": n},
        "requested_by": "test",
        "created_at": DAY + timedelta(days=n // 10, seconds=n),
        "engine_us": 31,
        "via": "api",
        "earlier": [],
        "explanation": f"Firm reminder: reason {n} (rule RT-040).",
        "arm": None,
    }
    return {**record, **changes}


@pytest.fixture
def stored(settings):
    """40 decisions over four days (2024-04-15 to 18), as stored."""
    from storage.decisions import append_decisions

    return append_decisions([decision(n) for n in range(40)])


@pytest.fixture
def credo(settings, monkeypatch):
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def auditors_check(lines: list[str], linked: bool = True) -> list[int]:
    """What docs/audit-records.md tells an auditor to run, written without credo: recompute each
    line's
    hash from its record and its prev_hash and, for an unfiltered export (`linked`), check each
    prev_hash is the line before's hash; the seqs where it does not hold."""
    broken, previous = [], None
    for line in lines:
        row = json.loads(line)
        canonical = json.dumps(
            row["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        digest = hashlib.sha256(f"{row['prev_hash']}\n{canonical}".encode()).hexdigest()
        chained = not linked or previous is None or row["prev_hash"] == previous
        if digest != row["hash"] or not chained:
            broken.append(row["seq"])
        previous = row["hash"]
    return broken


def test_the_jsonl_export_carries_each_record_as_hashed(credo, stored):
    result = credo("audit", "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 40 and auditors_check(lines) == []
    first = json.loads(lines[0])
    assert list(first) == ["seq", "record", "prev_hash", "hash"]
    assert first["seq"] == stored[0]["seq"] and first["hash"] == stored[0]["hash"]
    assert first["record"]["facts"]["open_balance"] == "1200.50"
    assert first["record"]["format"] == 5 and "seq" not in first["record"]
    # an edited line no longer checks
    row = json.loads(lines[3])
    row["record"]["outcome"]["tone"] = "gentle"
    assert auditors_check([*lines[:3], json.dumps(row), *lines[4:]]) == [row["seq"]]


def test_filters_by_period_kind_and_customer(credo, stored, tmp_path):
    out = tmp_path / "credit.jsonl"
    args = ("--from", "2024-04-16", "--to", "2024-04-17", "--kind", "credit", "--customer", "C3")
    result = credo("audit", "export", "--format", "jsonl", *args, "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = [
        d["decision_id"]
        for d in stored
        if d["kind"] == "credit"
        and d["customer_id"] == "C3"
        and "2024-04-16" <= d["created_at"][:10] <= "2024-04-17"
    ]
    assert expected and [r["record"]["decision_id"] for r in rows] == expected
    assert auditors_check(out.read_text(encoding="utf-8").splitlines(), linked=False) == []
    # a date-time bound is exact
    moment = stored[12]["created_at"]
    later = credo("audit", "export", "--from", moment).stdout.splitlines()
    assert json.loads(later[0])["record"]["decision_id"] == "dec-12" and len(later) == 28
    assert credo("audit", "export", "--to", "2024-04-14").stdout == ""


def test_the_csv_export_has_a_row_per_decision(credo, stored, tmp_path):
    out = tmp_path / "reminders.csv"
    result = credo("audit", "export", "--format", "csv", "--kind", "reminder", "--output", str(out))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20 and {r["kind"] for r in rows} == {"reminder"}
    first, stored_first = rows[0], stored[1]
    assert first["decision_id"] == "dec-1" and first["hash"] == stored_first["hash"]
    assert first["prev_hash"] == stored_first["prev_hash"]
    for column in ("customer_id", "as_of", "ruleset_version", "ruleset_sha256", "fired_rules"):
        assert first[column] != "", column
    assert json.loads(first["outcome"]) == stored_first["outcome"]
    assert json.loads(first["facts"]) == stored_first["facts"]
    assert first["requested_by"] == "test" and first["engine_us"] == "31"
    assert first["created_at"] == stored_first["created_at"]


def test_the_http_export_streams_what_the_cli_writes(credo, stored, client, auth):
    for format_ in ("jsonl", "csv"):
        query = f"format={format_}&from=2024-04-15&to=2024-04-18&kind=reminder&customer=C1"
        response = client.get(f"/v1/audit/export?{query}", headers=auth("auditor"))
        assert response.status_code == 200 and response.is_streamed
        assert response.mimetype == {"jsonl": "application/x-ndjson", "csv": "text/csv"}[format_]
        assert "attachment" in response.headers["Content-Disposition"]
        cli = credo(
            "audit", "export", "--format", format_, "--from", "2024-04-15", "--to", "2024-04-18",
            "--kind", "reminder", "--customer", "C1",
        )  # fmt: skip
        assert response.get_data() == cli.stdout_bytes
    assert client.get("/v1/audit/export", headers=auth("decide")).status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=xlsx", "format"),
        ("format=%3Dcmd", "format"),
        ("from=2024-02-30", "from"),
        ("from=1899-12-31", "from"),
        ("to=+1", "to"),
        ("to=" + "9" * 500, "to"),
        ("kind=@SUM(A1)", "kind"),
        ("kind=-2", "kind"),
        ("customer=" + "C" * 65, "customer"),
        ("customer=", "customer"),
        ("customer=%00", "customer"),
        ("customer=%0D", "customer"),
        ("customer=%ED%A0%80", "customer"),
    ],
)
def test_hostile_export_queries_are_422_naming_the_parameter(client, auth, query, field):
    response = client.get(f"/v1/audit/export?{query}", headers=auth("auditor"))
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert field in response.json["errors"], response.json


def test_bad_cli_arguments_exit_2_naming_the_option(credo, stored):
    for args, option in (
        (("--format", "xlsx"), "--format"),
        (("--from", "2024-02-30"), "--from"),
        (("--kind", "=cmd"), "--kind"),
        (("--customer", "x" * 65), "--customer"),
    ):
        result = credo("audit", "export", *args)
        assert result.exit_code == 2 and option in result.output, (args, result.output)


def test_an_export_reads_in_chunks_whatever_its_size(settings):
    """The memory an export takes does not grow with its size: exporting 8,000 decisions
    peaks at about what exporting 2,000 does (rows are read a chunk at a time by seq and
    written as they come), while holding them all would take four times as much."""
    from api.audit_records import export_decisions
    from storage.decisions import append_decisions

    filler = {"note": "x" * 1000}  # ~1 kB of facts per decision
    for start in range(0, 8000, 1000):
        append_decisions(
            [decision(n, facts={**filler, "n": n}) for n in range(start, start + 1000)]
        )
    quarter = DAY + timedelta(days=200)  # decisions 0 to 1999
    for format_ in ("jsonl", "csv"):
        peaks, totals = [], []
        for created_to in (quarter, None):
            tracemalloc.start()
            try:
                chunks = export_decisions(format_, created_to=created_to).chunks
                totals.append(sum(len(chunk) for chunk in chunks))
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert totals[1] > 3.9 * totals[0] > 7_000_000, (format_, totals)
        assert peaks[1] < 1.5 * peaks[0], (format_, peaks, totals)


def test_rows_stored_before_a_field_existed_are_exported_with_their_own_fields(settings):
    from api.audit_records import hashed_line

    old = {
        "seq": 1,
        **{
            k: v
            for k, v in decision(1).items()
            if k not in ("via", "earlier", "explanation", "arm")
        },
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }
    old["as_of"], old["created_at"] = "2024-04-15", DAY.isoformat()
    line = hashed_line(old)  # a format-1 row: no format member in what its hash signs
    assert "format" not in line["record"] and "via" not in line["record"]
    assert set(line["record"]) == {
        "decision_id",
        "kind",
        "customer_id",
        "as_of",
        "created_at",
        "requested_by",
        "ruleset",
        "outcome",
        "reasons",
        "fired",
        "facts",
        "engine_us",
    }
