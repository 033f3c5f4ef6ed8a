"""The verified key a view sees (auth.Caller) names the key's owner, for four eyes."""

from __future__ import annotations


def test_the_caller_carries_the_keys_owner(app):
    from api.http.auth import current_caller, require_role
    from storage import keys

    key, _ = keys.create_key("alice-approver", "approver", owner="alice")
    view = require_role("approver")(current_caller)
    with app.test_request_context(headers={"Authorization": f"Bearer {key}"}):
        caller = view()
    assert (caller.name, caller.role, caller.owner) == ("alice-approver", "approver", "alice")
