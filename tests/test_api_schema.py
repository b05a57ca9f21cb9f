"""The JSON API conforms to its own spec: Schemathesis against the served OpenAPI document, in
process through the Flask app, with an organization's tokens, on every operation the portal
serves under /api/v1.

- ``test_every_operation_conforms_to_the_spec``: Schemathesis's examples, coverage (each
  boundary, each missing or mistyped field, each method an address does not take) and fuzzing
  phases, valid and invalid data, and every check that applies to one response: no server
  error; status code, content type, headers and body as documented; invalid data refused and
  valid data accepted; a request without or with a forged token refused; 405 with ``Allow``.
  Split in parts so that pytest-xdist's workers share them.
- ``test_created_resources_can_be_read``: the stateful phase, which follows the spec's links
  from an act just requested to reading it (``ensure_resource_availability``). No operation
  deletes, so ``use_after_free`` has nothing to look at; ``object_level_authorization`` needs
  Schemathesis's own sign-up of identities: isolation is tests/test_api.py's.
- ``test_every_refusal_is_documented``: refusals generated data rarely reaches (a body too
  large, a throttled sign-in, a token of the other kind, a period in the wrong order), made on
  purpose and checked against the spec the same way.

Schemathesis's own pytest integration (``schema.parametrize()``) does not run under pytest 9,
so each operation's Hypothesis test is built the way that integration builds it.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source

from tests.factories import PASSWORD
from tests.test_api import API, bearer, login, world  # noqa: F401  (the fixture)

#: Generated requests per operation in the fuzzing phase (the coverage phase adds its own, a
#: few dozen): enough to reach every branch of the parsing, few enough for the parts to stay
#: within half a minute each. SCHEMATHESIS_EXAMPLES=200 for a deeper run by hand.
MAX_EXAMPLES = 15
#: A fixed seed: a failure is the same on every run (SCHEMATHESIS_SEED for another).
SEED = 20261206
#: FAB's own endpoints that are not the portal's API (the menu, the spec itself).
NOT_OURS = ("/api/v1/menu/", "/api/{version}/_openapi")
#: The operations of each part, by a pattern of ``METHOD /path``.
PARTS = {
    "lists": r"^GET /api/v1/(account|act|charge|contract)/$",
    "more lists": r"^GET /api/v1/(invoice|meter|payment|reading)/$",
    "rows": r"^GET /api/v1/\w+/\{pk\}",
    "writes": r"^POST /api/v1/(reading|act)/",
    "sign-in": r"^POST /api/v1/security/",
    # an organization's user is refused (403); as a resident: tests/test_api_autopay.py
    "autopay": r"^\w+ /api/v1/autopay/",
}
#: A URL argument as Werkzeug writes it (``<int:pk>``) and OpenAPI (``{pk}``).
ARGUMENT = re.compile(r"<(?:[^:<>]+:)?(\w+)>")
#: Every check of the installed Schemathesis but two: ``object_level_authorization`` (see
#: above) and ``max_response_time`` (no limit is promised).
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance, checks.negative_data_rejection,
          checks.positive_data_acceptance, checks.missing_required_header,
          checks.unsupported_method, checks.allow_header_conformance, checks.ignored_auth,
          checks.use_after_free, checks.ensure_resource_availability]
#: What a request the spec calls valid may get: done, refused for who is asking (401, 403) or
#: for what it names (404: not found or not the caller's), or refused by the portal's rules,
#: which no schema can say (409: the act is not ready; 422: a reading below the previous one,
#: an act already requested; 429: too many sign-ins). Not 400: that is for what the spec
#: refuses too. Not 5xx.
VALID_DATA_ANSWERS = ["2xx", "401", "403", "404", "409", "422", "429"]


def schemathesis_config(tokens: dict, **extra) -> SchemathesisConfig:
    """Every phase but the stateful one, valid and invalid data, the tokens by the spec's
    security schemes. Strings are UTF-8 without NUL: what the portal refuses before any view
    (tests/test_fuzz_forms.py tries the rest), and a valid request never holds."""
    return SchemathesisConfig.from_dict({
        "seed": int(os.environ.get("SCHEMATHESIS_SEED", SEED)),
        "generation": {"mode": "all", "codec": "utf-8", "allow-x00": False,
                       "max-examples": int(os.environ.get("SCHEMATHESIS_EXAMPLES",
                                                          MAX_EXAMPLES))},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "checks": {"positive_data_acceptance": {"expected-statuses": VALID_DATA_ANSWERS}},
        "auth": {"openapi": {"jwt": {"bearer": tokens["access_token"]},
                             "jwt_refresh": {"bearer": tokens["refresh_token"]}}},
        **extra,
    })


@pytest.fixture
def spec(app, client, make_user_fn):
    """The spec as the portal serves it (to a signed-in administrator), the portal's
    operations only."""
    make_user_fn("admin", "Admin")
    client.post("/login/", data={"username": "admin", "password": PASSWORD})
    served = client.get(f"{API}/_openapi").json
    for path in NOT_OURS:
        served["paths"].pop(path)
    return served


@pytest.fixture
def tokens(app, client, world):  # noqa: F811
    """Krasnodar's organization user's access and refresh tokens, with readings accepted
    every day of the month."""
    krd, _ = world
    app.config.update(READING_WINDOW_FIRST_DAY=1, READING_WINDOW_LAST_DAY=31)
    return login(client, "org-krd", krd.branch_id, refresh=True).json


@pytest.mark.parametrize("part", PARTS)
def test_every_operation_conforms_to_the_spec(app, spec, tokens, part):
    schema = schemathesis.openapi.from_dict(spec, config=schemathesis_config(tokens))
    schema.app = app
    feedback = FeedbackSources(constants_value_source=make_constants_value_source(schema))
    calls, failures = Counter(), []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not re.search(PARTS[part], operation.label):
            continue

        def call(case):
            calls[case.operation.label, case.meta.phase.name.value] += 1
            case.call_and_validate(checks=CHECKS)

        test = build_operation_test(config=schema.config, operation=operation, test_func=call,
                                    given_kwargs={}, feedback=feedback)
        try:
            test()
        except (Exception, FailureGroup) as error:  # every operation's failures, not the first
            failures.append(f"{operation.label}\n{error}")
    assert not failures, "\n\n".join(failures)
    tested = {label for label, _phase in calls}
    assert len(tested) >= {"lists": 4, "more lists": 4, "rows": 10, "writes": 3,
                          "sign-in": 2, "autopay": 6}[part], tested
    assert all(calls[label, phase] >= 10 for label in tested
               for phase in ("coverage", "fuzzing")), calls


def test_every_served_route_is_in_the_spec(app, spec):
    """Schemathesis calls only what the spec lists: every route under /api/v1 is there, with
    each of its methods, and the parts above take every operation."""
    served = {method + " " + ARGUMENT.sub(r"{\1}", rule.rule)
              for rule in app.url_map.iter_rules() if rule.rule.startswith(f"{API}/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    listed = {f"{method.upper()} {path}" for path, operations in spec["paths"].items()
              for method in operations}
    assert served - listed <= {f"GET {path}" for path in NOT_OURS}, served - listed
    assert all(any(re.search(pattern, label) for pattern in PARTS.values()) for label in listed)


def test_each_operation_lists_the_refusals_it_can_give(spec):
    """Whatever an operation is, the input guard's 400 and a 405 with ``Allow``; behind a
    token, 401 with its challenge; with a body, 413."""
    responses = spec["components"]["responses"]
    assert responses["MethodNotAllowed"]["headers"]["Allow"]["required"] is True
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses["TooManyRequests"]["headers"]["Retry-After"]["required"] is True
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "405"} <= codes, (method, path)
            assert operation["operationId"], (method, path)
            if operation.get("security"):
                assert "401" in codes and operation["security"] in (
                    [{"jwt": []}], [{"jwt_refresh": []}]), (method, path)
            if "requestBody" in operation:
                assert "413" in codes, (method, path)


def test_created_resources_can_be_read(app, spec, tokens):
    """The stateful phase: an act requested for a contract from the contract list is then
    found by its id and its file (409 until finance makes it). The contract list's link and
    the request's period are the test's: generated ids and dates would almost never name the
    organization's contract and a past period."""
    links, month = {}, dt.date.today().replace(day=1)
    for number in range(1, 4):  # each of the last three months: one act each
        end = month - dt.timedelta(days=1)
        month = end.replace(day=1)
        links[f"RequestAct{number}"] = {
            "operationId": "act_request_act", "x-schemathesis": {"merge_body": False},
            "requestBody": {"contract_id": "$response.body#/ids/0",
                            "date_from": month.isoformat(), "date_to": end.isoformat()}}
    spec["paths"][f"{API}/contract/"]["get"]["responses"]["200"]["links"] = links
    schema = schemathesis.openapi.from_dict(spec, config=schemathesis_config(
        tokens, generation={"mode": "positive", "codec": "utf-8", "allow-x00": False},
        phases={"stateful": {"enabled": True}}))
    schema.app = app
    steps = []

    class Workflow(schema.as_state_machine()):
        def after_call(self, response, case):
            super().after_call(response, case)
            steps.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None,
                                   recorder=self.recorder)

    Workflow.run(settings=settings(max_examples=25, stateful_step_count=5, deadline=None,
                                   database=None, derandomize=True,
                                   suppress_health_check=list(HealthCheck)))
    assert ("POST /api/v1/act/", 201) in steps, steps
    assert ("GET /api/v1/act/{pk}", 200) in steps or \
        ("GET /api/v1/act/{pk}/file", 409) in steps, steps


def test_every_refusal_is_documented(app, client, spec, tokens, world):  # noqa: F811
    """Refusals made on purpose, each checked against the spec of the operation it answers:
    status, headers (``Allow``, ``WWW-Authenticate``, ``Retry-After``) and body."""
    krd, _ = world
    schema = schemathesis.openapi.from_dict(spec, config=schemathesis_config(tokens))
    access, refresh = bearer(tokens["access_token"]), bearer(tokens["refresh_token"])
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    reading = {"account_id": krd.ids["OrganizationAccount"],  # its last reading: 5678
               "meters": [{"meter_id": krd.ids["OrganizationMeter"], "t1": "1000"}]}
    act = {"contract_id": krd.ids["Contract"], "date_from": "01.01.2026",
           "date_to": "2026-01-31"}
    cases = [
        ("GET", "/account/{pk}", client.delete(f"{API}/account/1", headers=access), 405),
        ("GET", "/account/", client.get(f"{API}/account/", headers=refresh), 401),
        ("GET", "/account/", client.get(f"{API}/account/", headers=bearer("x.y.z")), 401),
        ("GET", "/account/", client.get(f"{API}/account/"), 401),
        ("POST", "/security/refresh", client.post(f"{API}/security/refresh", headers=access),
         401),
        ("GET", "/account/", client.get(f"{API}/account/?q=%00", headers=access), 400),
        ("GET", "/charge/", client.get(f"{API}/charge/", headers=access, query_string={
            "q": '{"filters":[{"col":"period","opr":"sw","value":"2026"}]}'}), 400),
        ("GET", "/charge/", client.get(f"{API}/charge/", headers=access, query_string={
            "q": '{"filters":[{"col":"account_id","opr":"eq","value":"2147483648"}]}'}), 400),
        ("POST", "/reading/", client.post(f"{API}/reading/", headers=access,
                                          data="0" * (65 * 1024),
                                          content_type="application/json"), 413),
        ("POST", "/reading/", client.post(f"{API}/reading/", headers=access, json={
            **reading, "meters": [{"meter_id": 2**31 - 1, "t1": "1300"}]}), 404),
        ("POST", "/reading/", client.post(f"{API}/reading/", headers=access, json=reading),
         422),
        ("POST", "/reading/check", client.post(f"{API}/reading/check", headers=access, json={
            **reading, "meters": [{"meter_id": krd.ids["OrganizationMeter"], "t1": "1 300"}]}),
         400),
        ("POST", "/act/", client.post(f"{API}/act/", headers=access, json=act), 400),
        ("POST", "/act/", client.post(f"{API}/act/", headers=access,
                                      json={**act, "date_from": "2026-02-01"}), 422),
        ("GET", "/act/{pk}/file", client.get(f"{API}/act/{krd.ids['ReconciliationAct']}/file",
                                             headers=access), 409),
    ]
    def sign_in_from_elsewhere(password: str = PASSWORD):
        """From an address the account never signed in from (the tokens' one it knows)."""
        return client.post(f"{API}/security/login", environ_base={"REMOTE_ADDR": "10.9.8.7"},
                           json={"username": "org-krd", "password": password,
                                 "branch": krd.branch_id})

    for _ in range(5):
        sign_in_from_elsewhere("wrong")
    asked = sign_in_from_elsewhere()  # the «not a robot» challenge first
    cases.append(("POST", "/security/login", asked, 401))
    assert "challenge" in asked.json, asked.json
    guard = app.extensions["signin_guard"]
    for n in range(guard.address_limit.amount):  # the address failed on as many logins
        guard.failed(guard.subject(None, f"login-{n}"), "10.9.8.7")
    cases.append(("POST", "/security/login", sign_in_from_elsewhere(), 429))
    failures = []
    for method, path, response, status in cases:
        operation = schema[f"{API}{path}"][method]
        assert response.status_code == status, (method, path, response.json)
        case = operation.Case(path_parameters={"pk": 1} if "{pk}" in path else None)
        try:
            case.validate_response(response, checks=[
                checks.status_code_conformance, checks.content_type_conformance,
                checks.response_headers_conformance, checks.response_schema_conformance])
        except (Exception, FailureGroup) as error:
            failures.append(f"{method} {path}: {status}\n{error}")
        assert "message" in response.json and not response.json["message"].isascii()
    assert not failures, "\n\n".join(failures)
