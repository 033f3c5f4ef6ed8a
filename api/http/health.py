"""Liveness and readiness: /healthz (the process answers) and /readyz (database and rules)."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from api.http.context import app_state
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint

blp = Blueprint("health", __name__, description="Liveness and readiness probes (no key needed)")


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ready"})
    database = ma.fields.String(required=True, metadata={"example": "ok"})
    rulesets = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "active version number by kind"},
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """Liveness: the process serves requests. Touches neither the database nor the rules."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.problem(503, "database unreachable, its file gone or replaced, or no active rule set")
    def get(self) -> dict[str, object]:
        """Readiness: the database answers (a SQLite file is still the one the server opened)
        and at least one rule set is active and loaded."""
        state = app_state()
        sqlite_file = current_app.extensions.get("credo.file")
        problem = sqlite_file.problem() if sqlite_file else None
        if problem:
            raise ApiProblem(503, problem)
        try:
            state.database.execute_sql("SELECT 1")
        except Exception as exc:  # any driver error means "not ready", with its text
            raise ApiProblem(503, f"database unreachable: {exc}") from exc
        try:
            state.rulesets.refresh()
            active = state.rulesets.all()
        except Exception as exc:  # a stored version that no longer parses, for instance
            raise ApiProblem(503, f"rule sets not loaded: {exc}") from exc
        if not active:
            raise ApiProblem(503, "no active rule set: run `credo init`")
        return {
            "status": "ready",
            "database": "ok",
            "rulesets": {kind: a.version for kind, a in sorted(active.items())},
        }


def init_app(api: Api) -> None:
    """Register /healthz and /readyz."""
    api.register_blueprint(blp)
