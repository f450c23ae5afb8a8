"""Schemathesis hooks for Chronos' contract run (tests/contract/run).

Two requests are changed before they are sent; every other is sent as
generated:

- An admin key may revoke itself (docs/api.md); the run must keep the key it
  uses, so a revocation of that key is sent for a key that does not exist
  instead (a 404 the document lists).
- A long poll (`POST /v1/workers/poll`) for handlers nobody enqueues waits
  its whole `wait_seconds` (up to 60) before answering an empty list; the
  run caps the wait at one second, so that it spends its time on requests
  rather than on waiting. The Rust suite tests the long wait itself.
"""

import os

import schemathesis

OWN_KEY_ID = os.environ["CHRONOS_CONTRACT_KEY_ID"]
NO_SUCH_KEY = "0000000000000000"


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/v1/api-keys/{id}/revoke"
        and case.path_parameters
        and case.path_parameters.get("id") == OWN_KEY_ID
    ):
        case.path_parameters["id"] = NO_SUCH_KEY


@schemathesis.hook("before_call")
def short_long_polls(ctx, case, kwargs):
    if (
        case.operation.method.upper() == "POST"
        and case.operation.path == "/v1/workers/poll"
        and isinstance(case.body, dict)
        and isinstance(case.body.get("wait_seconds"), (int, float))
        and case.body["wait_seconds"] > 1
    ):
        case.body["wait_seconds"] = 1
