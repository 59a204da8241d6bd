# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument-spec pieces shared by the modules (auth as in kubernetes.core, and the guard)."""

from __future__ import annotations

import copy
from typing import Any

from ansible.module_utils.basic import env_fallback


def _env(*names: str) -> tuple[Any, list[str]]:
    return (env_fallback, list(names))


# Option and environment names follow kubernetes.core so that K8S_AUTH_* settings and
# module_defaults written for kubernetes.core work here unchanged.
AUTH_ARG_SPEC: dict[str, dict[str, Any]] = {
    "kubeconfig": {
        "type": "raw",
        "no_log": True,
        "fallback": _env("K8S_AUTH_KUBECONFIG"),
    },
    "context": {"type": "str", "fallback": _env("K8S_AUTH_CONTEXT")},
    "host": {"type": "str", "fallback": _env("K8S_AUTH_HOST")},
    "api_key": {"type": "str", "no_log": True, "fallback": _env("K8S_AUTH_API_KEY")},
    "validate_certs": {
        "type": "bool",
        "aliases": ["verify_ssl"],
        "fallback": _env("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"),
    },
    "ca_cert": {
        "type": "path",
        "aliases": ["ssl_ca_cert"],
        "fallback": _env("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"),
    },
    "client_cert": {
        "type": "path",
        "aliases": ["cert_file"],
        "fallback": _env("K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"),
    },
    "client_key": {
        "type": "path",
        "aliases": ["key_file"],
        "no_log": False,
        "fallback": _env("K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"),
    },
    "proxy": {"type": "str", "fallback": _env("K8S_AUTH_PROXY")},
    "no_proxy": {"type": "str", "fallback": _env("K8S_AUTH_NO_PROXY")},
    "impersonate_user": {"type": "str", "fallback": _env("K8S_AUTH_IMPERSONATE_USER")},
    "impersonate_groups": {
        "type": "list",
        "elements": "str",
        "fallback": _env("K8S_AUTH_IMPERSONATE_GROUPS"),
    },
}

AUTH_OPTION_NAMES: tuple[str, ...] = tuple(AUTH_ARG_SPEC)

GUARD_ARG_SPEC: dict[str, dict[str, Any]] = {
    "allow_production": {"type": "bool", "default": False},
    "production_label": {"type": "str", "default": "environment"},
    "production_value": {"type": "str", "default": "production"},
}


def build_argument_spec(
    *pieces: dict[str, dict[str, Any]], **own: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Merge shared pieces and the module's own options into one fresh argument spec."""
    spec: dict[str, dict[str, Any]] = {}
    for piece in pieces:
        spec.update(copy.deepcopy(piece))
    spec.update(copy.deepcopy(own))
    return spec


def auth_params(params: dict[str, Any]) -> dict[str, Any]:
    """The auth options of a module's params (the key of the client cache)."""
    return {name: params.get(name) for name in AUTH_OPTION_NAMES}


# The run's change ledger ("namespace/name"): a changing module records what it changes there
# first. The game-day playbooks set VERITAS_LEDGER for the run, so roles need not pass it.
LEDGER_ARG_SPEC: dict[str, dict[str, Any]] = {
    "ledger": {"type": "str", "fallback": _env("VERITAS_LEDGER")},
}
