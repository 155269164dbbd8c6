"""The API's OpenAPI 3 description (`openapi.json` beside this module), served at
`GET /api/openapi.json` without the bearer token: it describes the routes and holds no
data, and the tools that read it (client generators, API consoles) should need no secret."""
import functools
import json
import os

from flask import jsonify

from callback.web.api import bp

DOCUMENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")


@functools.cache
def document():
    """The OpenAPI document, read once per container."""
    with open(DOCUMENT, encoding="utf-8") as f:
        return json.load(f)


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI 3.1 description."""
    return jsonify(document())
