from __future__ import annotations

import json

import pytest
from ansible_collections.veritas.chaos.plugins.module_utils._exec import (
    exit_code_from_status,
)


@pytest.mark.parametrize(
    "status, code",
    [
        ({"status": "Success"}, 0),
        (
            {
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "7"}]},
            },
            7,
        ),
        (
            {
                "status": "Failure",
                "message": "Internal error occurred: error executing command in container: cmd wait: sh -c exit 3: exit status 3",
                "reason": "InternalError",
                "details": {"causes": [{"message": "..."}]},
            },
            3,
        ),
        ({"status": "Failure", "message": "container not found"}, -1),
    ],
)
def test_exit_code_from_status(status, code):
    assert exit_code_from_status(json.dumps(status)) == code


@pytest.mark.parametrize("text", [None, "", "not json"])
def test_unreadable_status_is_a_failure(text):
    assert exit_code_from_status(text) == -1
