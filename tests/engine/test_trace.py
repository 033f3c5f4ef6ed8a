"""The canonical JSON a decision's hash signs, written whole or from its members' texts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.trace import canonical_json, canonical_object

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_an_object_from_its_members_texts_is_its_canonical_json(value):
    members = {key: canonical_json(member) for key, member in value.items()}
    assert canonical_object(members) == canonical_json(value)
