"""Schemathesis against the served spec, in process through the Flask app: every operation of
the portal's API gets a few generated requests with an organization's token, and every answer
must be no server error and conform to the spec (status code, content type, body schema)."""
from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import PASSWORD
from tests.test_api import API, bearer, login, world  # noqa: F401  (the fixture)

#: Generated requests per operation: enough to reach every branch of the parsing, small
#: enough for the whole run to stay well under a minute.
MAX_EXAMPLES = 8
#: FAB's own endpoints that are not the portal's API (the menu, the spec itself).
NOT_OURS = ("/api/v1/menu/", "/api/{version}/_openapi")
#: A URL argument as Werkzeug writes it (``<int:pk>``) and OpenAPI (``{pk}``).
ARGUMENT = re.compile(r"<(?:[^:<>]+:)?(\w+)>")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_every_operation_conforms_to_the_spec(app, client, make_user_fn, world):  # noqa: F811
    krd, _ = world
    make_user_fn("admin", "Admin")
    client.post("/login/", data={"username": "admin", "password": PASSWORD})
    spec = client.get(f"{API}/_openapi").json
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = app
    tokens = login(client, "org-krd", krd.branch_id, refresh=True).json
    app.config.update(READING_WINDOW_FIRST_DAY=1, READING_WINDOW_LAST_DAY=31)
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in NOT_OURS:
            continue
        token = tokens["refresh_token" if operation.path.endswith("/refresh") else
                       "access_token"]

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(headers=bearer(token)))
        def run(case):
            response = case.call()
            case.validate_response(response, checks=CHECKS)

        run()
        tested.append(f"{operation.method.upper()} {operation.path}")
    served = {method + " " + ARGUMENT.sub(r"{\1}", rule.rule)
              for rule in app.url_map.iter_rules() if rule.rule.startswith(f"{API}/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    left_out = served - set(tested) - {f"GET {path}" for path in NOT_OURS}
    assert not left_out, f"routes the spec leaves out, so schemathesis never calls: {left_out}"
    assert len(tested) >= 20, tested
