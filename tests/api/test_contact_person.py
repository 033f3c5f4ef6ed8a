"""The contact person on the customer record (issue 16 item 6): optional, through the customer
API, the ledger batch and `credo import` (JSONL and CSV columns), and hostile values refused
with the field named, never a 500."""

from __future__ import annotations

import json

import pytest

from api.intake.importer import import_file
from engine.ledger import ContactPerson

CUSTOMER = {
    "name": "Weber Maschinenbau GmbH",
    "country": "DE",
    "currency": "EUR",
    "credit_limit": "50000.00",
    "since": "2020-01-01",
}
WEBER = {
    "name": "Anna Weber",
    "email": "anna.weber@example.com",
    "language": "de",
    "salutation": "ms",
}
HOSTILE = {
    "a lone surrogate": ({"name": "Anna \ud800"}, "contact.name", "surrogate"),
    "a NUL": ({"name": "Anna\x00Weber"}, "contact.name", "NUL"),
    "10,000 characters": ({"name": "A" * 10_000}, "contact.name", "between 1 and 200"),
    "an empty name": ({"name": ""}, "contact.name", "between 1 and 200"),
    "no name": ({"email": "a@example.com"}, "contact.name", "Missing data"),
    "a formula": ({"name": '=HYPERLINK("x")'}, "contact.name", "must not start with ="),
    "a plus": ({"name": "+49 30 1234"}, "contact.name", "must not start with"),
    "an at sign": ({"name": "@SUM(A1)"}, "contact.name", "must not start with"),
    "a control character": ({"name": "Anna\x1bWeber"}, "contact.name", "control"),
    "a number": ({"name": 10**30}, "contact.name", "Not a valid string"),
    "not an e-mail": ({"name": "Anna", "email": "anna"}, "contact.email", "e-mail address"),
    "a formula e-mail": (
        {"name": "Anna", "email": "=cmd@example.com"},
        "contact.email",
        "must not start with",
    ),
    "a long e-mail": (
        {"name": "Anna", "email": "a" * 300 + "@example.com"},
        "contact.email",
        "maximum length 254",
    ),
    "a language name": ({"name": "Anna", "language": "Deutsch"}, "contact.language", "code"),
    "another salutation": ({"name": "Anna", "salutation": "dr"}, "contact.salutation", "'ms'"),
    "an unknown field": ({"name": "Anna", "phone": "1"}, "contact.phone", "Unknown field"),
    "a list": ([WEBER], "contact", "Invalid input type"),
    "text": ("Anna Weber", "contact", "Invalid input type"),
}


def stored_contact(customer_id: str) -> ContactPerson | None:
    from storage.ledger import load_ledger

    return load_ledger(customer_id).customer.contact


def test_the_customer_api_stores_a_contact_and_a_customer_without_one_gets_no_422(client, auth):
    put = client.put(
        "/v1/customers/C-W", json={**CUSTOMER, "contact": WEBER}, headers=auth("decide")
    )
    assert put.status_code == 200, put.json
    assert stored_contact("C-W") == ContactPerson(
        "Anna Weber", "anna.weber@example.com", "de", "ms"
    )
    # optional: a caller that omits it, or sends null, is not refused; the record replaces
    # the stored one, so the contact person is gone
    for body in (CUSTOMER, {**CUSTOMER, "contact": None}):
        response = client.put("/v1/customers/C-W", json=body, headers=auth("decide"))
        assert response.status_code == 200, response.json
        assert stored_contact("C-W") is None
    only_name = {**CUSTOMER, "contact": {"name": "Jonas Müller"}}
    assert (
        client.put("/v1/customers/C-W", json=only_name, headers=auth("decide")).status_code == 200
    )
    assert stored_contact("C-W") == ContactPerson("Jonas Müller")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_contact_values_are_422_naming_the_field(client, auth, case):
    contact, field, words = HOSTILE[case]
    body = {**CUSTOMER, "contact": contact}
    response = client.put("/v1/customers/C-H", json=body, headers=auth("decide"))
    assert response.status_code == 422, response.json
    assert words in " ".join(response.json["errors"][field]), response.json
    batch = {"records": [{"type": "customer", "id": "C-H", **body}]}
    response = client.post("/v1/ledger/batch", json=batch, headers=auth("decide"))
    assert response.status_code == 422 and f"records.0.{field}" in response.json["errors"]


def test_import_takes_the_contact_as_jsonl_or_as_csv_columns_and_names_bad_cells(db, tmp_path):
    jsonl = tmp_path / "customers.jsonl"
    record = {"type": "customer", "id": "C-J", **CUSTOMER, "contact": WEBER}
    jsonl.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert import_file(jsonl).inserted == 1
    assert stored_contact("C-J").salutation == "ms"

    csv = tmp_path / "customers.csv"
    header = "id,name,country,currency,credit_limit,since,contact_name,contact_email,"
    header += "contact_language,contact_salutation\n"
    rows = [
        'C-1,"Weber GmbH",DE,EUR,1000.00,2020-01-01,Anna Weber,anna@example.com,de,ms',
        "C-2,Plain Ltd,GB,GBP,1000.00,2020-01-01,,,,",  # no contact person: empty cells
        "C-3,Bad Ltd,GB,GBP,1000.00,2020-01-01,=HYPERLINK(1),x,en,",
        "C-4,Bad Ltd,GB,GBP,1000.00,2020-01-01,Ann,ann@example.com,en,mrs",
        "C-5,No Name Ltd,GB,GBP,1000.00,2020-01-01,,ann@example.com,,",
    ]
    csv.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    report = import_file(csv, "customer")
    assert report.inserted == 2
    assert stored_contact("C-1") == ContactPerson("Anna Weber", "anna@example.com", "de", "ms")
    assert stored_contact("C-2") is None
    rejected = {r.id: r.errors for r in report.rejected}
    assert set(rejected) == {"C-3", "C-4", "C-5"}
    assert set(rejected["C-3"]) == {"contact.name", "contact.email"}
    assert list(rejected["C-4"]) == ["contact.salutation"]
    assert "Missing data" in rejected["C-5"]["contact.name"][0]


def test_a_csv_with_a_contact_column_and_contact_columns_is_a_bad_line(db, tmp_path):
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "id,name,currency,credit_limit,since,contact,contact_name\n"
        "C-1,Acme,EUR,1.00,2020-01-01,Anna,Anna\n",
        encoding="utf-8",
    )
    report = import_file(csv, "customer")
    assert report.inserted == 0 and "contact_name" in report.rejected[0].errors


def test_the_import_guides_examples_with_a_contact_person_import_as_shown(db, tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text(encoding="utf-8")
    jsonl = doc.split("```json\n", 1)[1].split("```", 1)[0]
    (tmp_path / "ledger.jsonl").write_text(jsonl, encoding="utf-8")
    report = import_file(tmp_path / "ledger.jsonl")
    assert report.rejected == [] and report.inserted == len(jsonl.strip().splitlines())
    assert stored_contact("C100") == ContactPerson(
        "Anna Weber", "anna.weber@nordwind.example", "de", "ms"
    )
    blocks = [part.split("```", 1)[0] for part in doc.split("```csv\n")[1:]]
    csv = next(block for block in blocks if "contact_name" in block)
    (tmp_path / "customers.csv").write_text(csv, encoding="utf-8")
    report = import_file(tmp_path / "customers.csv", "customer")
    assert report.rejected == [] and (report.inserted, report.updated) == (2, 1), report
    assert stored_contact("C102") == ContactPerson("Oliver Smith", "", "en", "")
    assert stored_contact("C103") is None


def test_the_console_shows_the_contact_person_escaped(client, auth, keys):
    from console_support import sign_in

    contact = {"name": "Anna <b>Weber</b>", "email": "anna@example.com", "language": "de"}
    body = {**CUSTOMER, "contact": contact}
    assert client.put("/v1/customers/C-E", json=body, headers=auth("decide")).status_code == 200
    sign_in(client, keys["analyst"])
    html = client.get("/console/customers/C-E").get_data(as_text=True)
    assert "Contact: Anna &lt;b&gt;Weber&lt;/b&gt; &lt;anna@example.com&gt;" in html
    assert "<b>Weber" not in html
