"""Fill a fresh SQLite database for the browser tests, in its own process: a small demo
portfolio, a customer named like a script (imported from a file whose path reads as a script),
a nightly run, and keys for four people.

    python tests/console/make_data.py DATA_DIR   -> prints {"keys": {...}, ...} as JSON
"""

from __future__ import annotations

import json
import sys
from datetime import date
from io import StringIO
from pathlib import Path

from rich.console import Console

from api.settings import load_settings

AS_OF = date(2026, 3, 2)
HOSTILE = "<script>alert(1)</script>"


def main(data_dir: str) -> None:
    from api.demo.run import run_demo
    from api.intake.importer import import_file
    from api.nightly.run import execute_run, prepare_run
    from storage.keys import create_key

    settings = load_settings(env={"CREDO_PATHS_DATA_DIR": data_dir})
    run_demo(settings, 24, 7, AS_OF, Console(file=StringIO()))
    records = [
        {
            "type": "customer",
            "id": "EVIL1",
            "name": HOSTILE,
            "currency": "EUR",
            "credit_limit": "5000.00",
            "since": "2020-01-01",
            "segment": "small_business",
        },
        {
            "type": "invoice",
            "id": "EVIL-I1",
            "customer_id": "EVIL1",
            "issue_date": "2025-12-01",
            "due_date": "2025-12-31",
            "amount": "1200.00",
        },
        {
            "type": "call",
            "id": "EVIL-K1",
            "customer_id": "EVIL1",
            "date": "2026-02-01",
            "note": "<img src=x onerror=alert(2)>",
        },
    ]
    # imported from a file whose path reads as a script too: the operator log keeps the path
    hostile_file = Path(data_dir) / f"{HOSTILE}.jsonl"  # a folder "<script>alert(1)<" holds it
    hostile_file.parent.mkdir()
    hostile_file.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = import_file(hostile_file)
    assert report.inserted == len(records) and not report.rejected, report
    run, _ = prepare_run(settings, AS_OF, False, "browser test")
    execute_run(settings, run.run_id, workers=1)
    keys = {
        "analyst": create_key("alice-analyst", "analyst", "alice")[0],
        "approver": create_key("bob-approver", "approver", "bob")[0],
        "auditor": create_key("carol-auditor", "auditor", "carol")[0],
        "admin": create_key("dave-admin", "admin", "dave")[0],
    }
    print(json.dumps({"keys": keys, "run_id": run.run_id, "as_of": AS_OF.isoformat()}))


if __name__ == "__main__":
    main(sys.argv[1])
