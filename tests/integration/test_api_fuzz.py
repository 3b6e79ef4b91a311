"""Schemathesis against tagport's own OpenAPI document: no 5xx, no response that breaks
its schema, on every route, with a bounded number of generated requests.

(Driven through hypothesis directly: schemathesis' pytest plugin does not run on
pytest 9.)
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tagport.api.app import create_app

# The suite's run is the same every time (a red CI can be reproduced); a deeper, random
# search by hand: TAGPORT_FUZZ_EXAMPLES=2000 python3 dev.py test -k fuzz
DEEP = os.environ.get("TAGPORT_FUZZ_EXAMPLES")
EXAMPLES_PER_ROUTE = int(DEEP or "15")


def test_no_server_errors_and_responses_match_the_schema(seeded):
    app = create_app(seeded, run_workers=False)
    headers = {"Authorization": f"Bearer {seeded.tokens.create('fuzz', ('admin',))}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4  # the seed's three routes and cancel, at least

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
                  derandomize=DEEP is None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        check()
