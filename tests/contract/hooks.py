"""Schemathesis hooks for Chronos' contract run (tests/contract/run).

An admin key may revoke itself (docs/api.md); the run must keep the key it
uses, so a revocation of that key is sent for a key that does not exist
instead (a 404 the document lists). Every other request is sent as
generated.
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
