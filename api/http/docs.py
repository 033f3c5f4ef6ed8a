"""Browsable API docs at /docs: Swagger UI served from the app itself, never from a CDN.

Customers run credo behind firewalls, so the UI's JavaScript and CSS come from the
swagger-ui-bundle package and the page loads /openapi.json from the same server.
"""

from __future__ import annotations

import html
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory, url_for

_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{js}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


def _assets_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


blueprint = Blueprint("docs", __name__)


@blueprint.get("/docs")
def docs_page() -> Response:
    """The Swagger UI page for /openapi.json."""
    page = _PAGE.format(
        title=html.escape("credo API"),
        css=url_for("docs.asset", name="swagger-ui.css"),
        icon=url_for("docs.asset", name="favicon-32x32.png"),
        js=url_for("docs.asset", name="swagger-ui-bundle.js"),
        spec=url_for("api-docs.openapi_json"),
    )
    return Response(page, mimetype="text/html")


@blueprint.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    """One of the vendored Swagger UI files."""
    if name not in _ASSETS:
        abort(404)
    return send_from_directory(_assets_dir(), name, max_age=86400)


def init_app(app: Flask) -> None:
    """Serve /docs and its assets."""
    app.register_blueprint(blueprint)
