"""Letters are policy too (issue 14 item 4): the reminder templates are stored with the reminder
version, go through the lifecycle, and a run renders with the texts of the version it pinned,
whatever rules/templates holds; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from datetime import date, timedelta

import pytest
from api_support import RULES_DIR
from click.testing import CliRunner
from lifecycle_support import edited_reminder, make_people, reminder_source

from api.cli.main import main
from storage import rulesets

BASE = "/v1/rulesets/reminder"
AS_OF = date(2026, 3, 2)
TEMPLATES = RULES_DIR / "templates"


@pytest.fixture
def as_(app):
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


def shipped() -> dict[str, str]:
    """The shipped templates as stored: company.toml and reminder/*.j2, by path."""
    files = {"company.toml": (TEMPLATES / "company.toml").read_text(encoding="utf-8")}
    for path in sorted((TEMPLATES / "reminder").glob("*.j2")):
        files[f"reminder/{path.name}"] = path.read_text(encoding="utf-8")
    return files


def reworded(files: dict[str, str], mark: str) -> dict[str, str]:
    """Every text (not the pieces) with a line `mark` right after its subject."""
    return {
        path: _after_subject(text, mark) if _is_text(path) else text for path, text in files.items()
    }


def _after_subject(text: str, line: str) -> str:
    start = text.index("Subject:")
    end = text.index("\n", start) + 1
    return text[:end] + line + "\n" + text[end:]


def _is_text(path: str) -> bool:
    return path.startswith("reminder/") and not path.startswith("reminder/_")


def sha256sum_manifest(files: dict[str, str]) -> str:
    """What `LC_ALL=C sha256sum company.toml reminder/*.j2 | sha256sum` prints (its hash)."""
    lines = "".join(
        f"{hashlib.sha256(files[p].encode()).hexdigest()}  {p}\n" for p in sorted(files)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def activate(client, as_, templates: dict[str, str] | None, source: str | None = None) -> int:
    """Draft (alice), propose (alice), approve and activate (bob) a reminder version."""
    body = {"source": source or reminder_source(), "note": "new wording"}
    if templates is not None:
        body["templates"] = templates
    drafted = client.post(f"{BASE}/versions", json=body, headers=as_("alice-analyst"))
    assert drafted.status_code == 201, drafted.json
    version = drafted.json["version"]
    for who, move in (("alice-analyst", "propose"), ("bob-approver", "approve")):
        moved = client.post(f"{BASE}/versions/{version}/{move}", headers=as_(who))
        assert moved.status_code == 200, moved.json
    moved = client.post(f"{BASE}/versions/{version}/activate", headers=as_("bob-approver"))
    assert moved.json["state"] == "active"
    return version


def messages(run_id: str) -> list[str]:
    """The bodies of a run's reminder messages; every reminder has one."""
    from storage.worklist import iter_actions

    actions = list(iter_actions(run_id, "reminder"))
    assert actions and all("message" in a.payload for a in actions), actions[0].payload
    return [a.payload["message"]["body"] for a in actions]


def test_a_wording_change_goes_through_the_lifecycle_and_each_run_uses_its_pinned_texts(
    settings, client, as_, tmp_path
):
    from test_nightly import portfolio, small

    from api.nightly.run import execute_run, prepare_run

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    settings = small(replace(settings, paths=replace(settings.paths, rules_dir=str(rules))))
    portfolio(40)
    first, _ = prepare_run(settings, AS_OF, False, "test")  # pins reminder version 1

    version = activate(client, as_, reworded(shipped(), "Wording v2."))
    assert version == 2
    # rules/templates on disk is edited after the activation: no run reads it
    for text in (rules / "templates" / "reminder").glob("[!_]*.j2"):
        text.write_text(_after_subject(text.read_text(), "Wording on disk."))

    execute_run(settings, first.run_id, workers=1)
    old = messages(first.run_id)
    assert not any("Wording" in body for body in old)

    shutil.rmtree(rules / "templates")  # ... or deleted
    second, _ = prepare_run(settings, AS_OF + timedelta(days=1), False, "test")
    assert second.rulesets["reminder"]["version"] == 2
    execute_run(settings, second.run_id, workers=1)
    assert all(body.startswith("Wording v2.\n") for body in messages(second.run_id))
    assert messages(first.run_id) == old  # the first run's worklist keeps its wording


def test_a_version_shows_its_templates_with_their_hashes_and_texts_on_request(client, as_):
    files = shipped()
    listed = client.get(f"{BASE}/versions/1", headers=as_("dave-auditor"))
    assert listed.status_code == 200
    assert listed.json["templates_sha256"] == sha256sum_manifest(files)
    assert listed.json["templates"] == [
        {"path": p, "sha256": hashlib.sha256(t.encode()).hexdigest(), "chars": len(t)}
        for p, t in sorted(files.items())
    ]
    texts = client.get(f"{BASE}/versions/1?text=true", headers=as_("dave-auditor")).json
    assert {e["path"]: e["text"] for e in texts["templates"]} == files
    credit = client.get("/v1/rulesets/credit/versions/1", headers=as_("dave-auditor")).json
    assert credit["templates"] is None and credit["templates_sha256"] is None
    assert (
        client.get(f"{BASE}/versions/1?text=maybe", headers=as_("dave-auditor")).status_code == 422
    )


def test_a_draft_without_templates_carries_the_active_ones_over_and_says_so(client, as_):
    drafted = client.post(
        f"{BASE}/versions",
        json={"source": edited_reminder(), "note": "clearer reason"},
        headers=as_("alice-analyst"),
    )
    assert drafted.status_code == 201
    assert drafted.json["templates_sha256"] == sha256sum_manifest(shipped())
    assert rulesets.get_files("reminder", 2) == shipped()
    event = rulesets.events("reminder", 2)[0]
    assert event["note"] == "clearer reason (templates carried over from version 1)"
    diff = client.get(f"{BASE}/diff?from=1&to=2", headers=as_("dave-auditor")).json
    assert diff["templates"] == {"added": [], "removed": [], "changed": []}


def test_the_diff_lists_templates_added_removed_and_changed_line_by_line(settings, client, as_):
    files = shipped()
    changed = dict(files)
    changed["reminder/firm.en.j2"] = files["reminder/firm.en.j2"].replace(
        "Kind regards", "Best regards", 1
    )
    changed["reminder/_sign.en.j2"] = "{{ company.name }}\n"
    del changed["reminder/demand.de.j2"]
    activate(client, as_, changed)
    diff = client.get(f"{BASE}/diff?from=1&to=2", headers=as_("dave-auditor")).json
    assert diff["same_rules"] is True
    assert diff["from"]["templates_sha256"] != diff["to"]["templates_sha256"]
    assert diff["templates"]["added"] == ["reminder/_sign.en.j2"]
    assert diff["templates"]["removed"] == ["reminder/demand.de.j2"]
    [firm] = diff["templates"]["changed"]
    assert firm["path"] == "reminder/firm.en.j2"
    assert "-Kind regards,\n+Best regards,\n" in firm["diff"]
    shown = CliRunner().invoke(
        main,
        ["rules", "diff", "reminder", "1", "2"],
        env={"CREDO_DATABASE_URL": settings.database_url},
    )
    assert shown.exit_code == 0, shown.output
    assert "+ template reminder/_sign.en.j2" in shown.stdout
    assert "- template reminder/demand.de.j2" in shown.stdout
    assert "~ template reminder/firm.en.j2\n" in shown.stdout
    assert "      -Kind regards,\n      +Best regards,\n" in shown.stdout


def _line_after(text: str) -> int:
    """The number of the line appended to `text` (which ends with a line end)."""
    return text.count("\n") + 1


def test_a_draft_with_a_failing_template_is_refused_naming_the_template_and_line(client, as_):
    files = shipped()
    firm = files["reminder/firm.en.j2"]
    bad = {**files, "reminder/firm.en.j2": firm + "{{ 1 / 0 }}\n"}
    refused = client.post(
        f"{BASE}/versions",
        json={"source": reminder_source(), "note": "x", "templates": bad},
        headers=as_("alice-analyst"),
    )
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "templates": [
            f"reminder/firm.en.j2:{_line_after(firm)}: ZeroDivisionError: division by zero "
            "(sample: small account with offers)"
        ]
    }
    assert [v["version"] for v in rulesets.history("reminder")] == [1]


HOSTILE = {
    "a path out of the directory": ({"../company.toml": "x"}, "'../company.toml'"),
    "an absolute path": ({"/etc/passwd": "x"}, "'/etc/passwd'"),
    "a path with NUL": ({"reminder/firm.en.j2\x00": "x"}, "'reminder/firm.en.j2\\x00'"),
    "a lone surrogate path": ({"reminder/\ud800.en.j2": "x"}, "'reminder/\\ud800.en.j2'"),
    "another extension": ({"reminder/firm.en.txt": "x"}, "'reminder/firm.en.txt'"),
    "a text with NUL": ({"reminder/firm.en.j2": "Subject: a\n\x00"}, "reminder/firm.en.j2:2"),
    "a lone surrogate text": ({"reminder/firm.en.j2": "Subject: \ud800"}, "reminder/firm.en.j2:1"),
    "a text not a string": ({"reminder/firm.en.j2": 12}, "must be a string"),
    "a text too long": ({"reminder/firm.en.j2": "x" * 100_001}, "at most 100,000 characters"),
    "no company.toml": ({"company.toml": None}, "company.toml: missing"),
    "a bad company.toml": ({"company.toml": "name = "}, "company.toml: Invalid value"),
    "a tone without its English text": (
        {"reminder/final.en.j2": None},
        "reminder/final.en.j2: missing: the final tone needs a text",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_templates_are_refused_naming_the_file(client, as_, case):
    change, named = HOSTILE[case]
    files = shipped()
    for path, text in change.items():
        if text is None:
            del files[path]
        else:
            files[path] = text
    refused = client.post(
        f"{BASE}/versions",
        json={"source": reminder_source(), "note": "x", "templates": files},
        headers=as_("alice-analyst"),
    )
    assert refused.status_code == 422, refused.json
    assert any(named in problem for problem in refused.json["errors"]["templates"])
    assert [v["version"] for v in rulesets.history("reminder")] == [1]


def test_templates_are_refused_for_a_kind_without_them_and_when_not_an_object(client, as_):
    credit = (RULES_DIR / "credit.toml").read_text()
    refused = client.post(
        "/v1/rulesets/credit/versions",
        json={"source": credit, "note": "x", "templates": shipped()},
        headers=as_("alice-analyst"),
    )
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "templates": ["only reminder versions have templates, not credit"]
    }
    for value in ("x", ["company.toml"], 3):
        refused = client.post(
            f"{BASE}/versions",
            json={"source": reminder_source(), "note": "x", "templates": value},
            headers=as_("alice-analyst"),
        )
        assert refused.status_code == 422 and "templates" in refused.json["errors"]


# ---- the command line -----------------------------------------------------------------------


@pytest.fixture
def credo(settings):
    keys = make_people()

    def run(*args: str, key: str | None = None):
        env = {"CREDO_DATABASE_URL": settings.database_url, "CREDO_KEY": keys.get(key or "")}
        return CliRunner().invoke(main, list(args), env=env)

    return run


def test_show_writes_the_templates_to_edit_and_publish_takes_them_from_beside_the_file(
    credo, tmp_path
):
    work = tmp_path / "work"
    shown = credo("rules", "show", "reminder", "--templates", str(work / "templates"))
    assert shown.exit_code == 0, shown.output
    assert f"reminder version 1: {len(shipped())} template files written to" in shown.stderr
    assert shown.stdout == reminder_source()
    (work / "reminder.toml").write_text(shown.stdout)
    firm = work / "templates" / "reminder" / "firm.en.j2"
    assert firm.read_text() == shipped()["reminder/firm.en.j2"]
    firm.write_text(firm.read_text().replace("Kind regards", "Yours sincerely", 1))

    again = credo("rules", "show", "reminder", "--templates", str(work / "templates"))
    assert again.exit_code == 2 and "is not empty" in again.stderr
    credit = credo("rules", "show", "credit", "--templates", str(tmp_path / "other"))
    assert credit.exit_code == 2 and "credit versions have no templates" in credit.stderr

    published = credo(
        "rules", "publish", str(work / "reminder.toml"), "--note", "warmer", key="alice-analyst"
    )
    assert published.exit_code == 0, published.output
    assert (
        f"{work / 'templates'}: {len(shipped())} template files, every text renders"
        in published.stdout
    )
    assert "Yours sincerely" in rulesets.get_files("reminder", 2)["reminder/firm.en.j2"]


def test_publish_refuses_a_failing_template_naming_it_and_stores_nothing(credo, tmp_path):
    folder = tmp_path / "texts"
    shutil.copytree(TEMPLATES, folder)
    demand = folder / "reminder" / "demand.de.j2"
    demand.write_text(demand.read_text() + "{{ kunde.name }}\n")
    mine = tmp_path / "reminder.toml"
    mine.write_text(reminder_source())
    refused = credo(
        "rules",
        "publish",
        str(mine),
        "--templates",
        str(folder),
        "--note",
        "x",
        key="alice-analyst",
    )
    assert refused.exit_code == 2, refused.output
    line = _line_after(shipped()["reminder/demand.de.j2"])
    assert f"reminder/demand.de.j2:{line}: 'kunde' is undefined" in refused.stderr
    assert [v["version"] for v in rulesets.history("reminder")] == [1]
    credit = tmp_path / "credit.toml"
    credit.write_text((RULES_DIR / "credit.toml").read_text())
    refused = credo(
        "rules",
        "publish",
        str(credit),
        "--templates",
        str(folder),
        "--note",
        "x",
        key="alice-analyst",
    )
    assert refused.exit_code == 2 and "credit rule set, which has no templates" in refused.stderr


# ---- credo init -----------------------------------------------------------------------------


def test_init_gives_versions_stored_before_templates_the_shipped_ones_once(database_url, empty_db):
    from datetime import UTC, datetime

    from api.usecases import init_database
    from storage.migrations import migrate
    from storage.models import RuleSetVersion

    migrate(empty_db, target=13)
    now = datetime(2026, 1, 5, tzinfo=UTC)
    for version, state in ((1, "retired"), (2, "active")):
        RuleSetVersion.create(
            kind="reminder",
            version=version,
            source=reminder_source(),
            sha256=hashlib.sha256(reminder_source().encode()).hexdigest(),
            state=state,
            note="",
            created_by="credo init",
            created_at=now,
        )
    report = init_database(database_url, RULES_DIR)
    assert 18 in report["migrations_applied"]
    [reminder] = [entry for entry in report["rulesets"] if entry["kind"] == "reminder"]
    assert reminder["templates_added"] == [1, 2] and reminder["action"] == "kept"
    assert rulesets.get_files("reminder", 1) == rulesets.get_files("reminder", 2) == shipped()
    added = [e for e in rulesets.events("reminder") if e["event"] == "templates_added"]
    assert [(e["version"], e["by"]) for e in added] == [(1, "credo init"), (2, "credo init")]

    again = init_database(database_url, RULES_DIR)
    [reminder] = [entry for entry in again["rulesets"] if entry["kind"] == "reminder"]
    assert reminder["templates_added"] == [] and reminder["action"] == "kept"
    assert [v["version"] for v in rulesets.history("reminder")] == [1, 2]


def test_init_drafts_a_version_when_the_shipped_templates_change(settings, tmp_path):
    from api.usecases import load_default_rulesets

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    friendly = rules / "templates" / "reminder" / "friendly.en.j2"
    friendly.write_text(friendly.read_text() + "\nA new release's sentence.\n")
    report = {e["kind"]: e for e in load_default_rulesets(rules)}
    assert report["reminder"]["action"] == "drafted" and report["reminder"]["version"] == 2
    assert report["credit"]["action"] == "kept"
    draft = rulesets.get_version("reminder", 2)
    assert (
        draft["state"] == "draft"
        and draft["sha256"] == rulesets.get_version("reminder", 1)["sha256"]
    )
    assert (
        "A new release's sentence." in rulesets.get_files("reminder", 2)["reminder/friendly.en.j2"]
    )
    assert load_default_rulesets(rules)[-1]["action"] == "kept"


def test_a_versions_files_never_change(db):
    rulesets.create_version("reminder", "x", "0" * 64, created_by="t", files={"company.toml": ""})
    from storage.errors import Conflict

    with pytest.raises(Conflict, match="has its files already"):
        rulesets.add_files("reminder", 1, {"company.toml": "name = 'other'"})
    assert json.dumps(rulesets.get_files("reminder", 1)) == '{"company.toml": ""}'
