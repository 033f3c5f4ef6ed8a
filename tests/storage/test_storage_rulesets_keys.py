"""Rule-set versions (numbering, states, one active per kind) and API keys (hashed, revocable)."""

from __future__ import annotations

import peewee
import pytest

from storage import keys, rulesets
from storage.errors import Conflict, NotFound
from storage.models import ApiKey, RuleSetVersion


def test_versions_are_numbered_per_kind_and_activation_retires_the_previous(db):
    v1 = rulesets.create_version("credit", "a", "1" * 64, created_by="init", state="active")
    v2 = rulesets.create_version("credit", "b", "2" * 64, created_by="ann", note="tighter")
    other = rulesets.create_version("reminder", "c", "3" * 64, created_by="ann")
    assert (v1["version"], v2["version"], other["version"]) == (1, 2, 1)
    assert v2["state"] == "draft" and v2["source"] == "b"

    rulesets.set_state("credit", 2, "proposed", by="ann")
    approved = rulesets.set_state("credit", 2, "approved", by="bob")
    assert (approved["proposed_by"], approved["approved_by"]) == ("ann", "bob")
    active = rulesets.set_state("credit", 2, "active", by="bob")
    assert active["activated_at"] is not None
    assert rulesets.get_active("credit")["version"] == 2
    assert rulesets.get_version("credit", 1)["state"] == "retired"
    assert rulesets.active_fingerprint() == (("credit", 2, "2" * 64),)

    # Rollback: version 1 becomes active again.
    rulesets.set_state("credit", 1, "active", by="bob")
    assert [(h["version"], h["state"]) for h in rulesets.history("credit")] == [
        (1, "active"),
        (2, "retired"),
    ]
    assert "source" not in rulesets.history("credit")[0]
    assert rulesets.list_kinds() == ["credit", "reminder"]


def test_state_errors(db):
    rulesets.create_version("credit", "a", "1" * 64, created_by="init")
    with pytest.raises(NotFound):
        rulesets.set_state("credit", 9, "proposed", by="x")
    with pytest.raises(Conflict):
        rulesets.set_state("credit", 1, "draft", by="x")
    with pytest.raises(ValueError, match="state"):
        rulesets.set_state("credit", 1, "published", by="x")


def test_the_database_refuses_two_active_versions_of_a_kind(db):
    rulesets.create_version("credit", "a", "1" * 64, created_by="init", state="active")
    rulesets.create_version("credit", "b", "2" * 64, created_by="init")
    with pytest.raises(peewee.IntegrityError), db.atomic():
        RuleSetVersion.update(state="active").where(RuleSetVersion.version == 2).execute()


def test_keys_are_stored_hashed_shown_once_and_revocable(db):
    clear, info = keys.create_key("erp", "decide")
    assert clear.startswith("credo_") and len(clear) > 40
    stored = ApiKey.get_by_id(info.id)
    assert stored.key_hash == keys.hash_key(clear) and clear not in stored.key_hash
    verified = keys.verify_key(clear)
    assert (verified.name, verified.role) == ("erp", "decide")
    assert verified.last_used_at is not None
    assert keys.verify_key(clear + "x") is None
    keys.revoke_key(info.id)
    assert keys.verify_key(clear) is None
    assert keys.list_keys(include_revoked=False) == []
    assert "key_hash" not in keys.list_keys()[0].to_json()
    with pytest.raises(ValueError, match="role"):
        keys.create_key("x", "root")
    with pytest.raises(NotFound):
        keys.revoke_key(999)
