# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks shared by the modules: Kubernetes names, label selectors, URLs and numbers.

AnsibleModule converts anything to a string for a ``str`` option and accepts any size of
number, so a dict given as a namespace, a 300-character name, ``app=`` as a selector or
``1e12`` seconds reach the module. These checks refuse them before the API is touched, with
a ChaosError (reason ``invalid_input``) whose ``field`` is the option.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._ledger import (
    parse_ledger_ref,
)
from ansible_collections.veritas.chaos.plugins.module_utils._selector import (
    LABEL_KEY,
    LABEL_NAME,
)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = re.compile("^" + _DNS_LABEL + "$")
DNS_SUBDOMAIN = re.compile("^" + _DNS_LABEL + r"(\." + _DNS_LABEL + ")*$")
LABEL_VALUE = re.compile("^" + LABEL_NAME + "$")
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_SET_REQUIREMENT = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")

# The largest number any option takes: the Kubernetes API's integers are int32, and no
# count, port or number of seconds here means anything larger.
NUMBER_LIMIT = 2**31 - 1
# Options whose values are free-form data rather than numbers the module uses.
_NOT_NUMBERS = ("kubeconfig",)


def invalid(field: str, msg: str) -> ChaosError:
    return ChaosError(msg, reason="invalid_input", field=field)


def _text(field: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{field} must be {what}, got {value!r}.")
    return value


def check_dns_label(field: str, value: Any) -> str:
    """A namespace or container name: lower-case letters, digits and '-', at most 63."""
    what = (
        "a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)"
    )
    text = _text(field, value, what)
    if len(text) > 63 or not DNS_LABEL.match(text):
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def check_object_name(field: str, value: Any) -> str:
    """An object name (DNS-1123 subdomain): lower-case letters, digits, '-' and '.', at most 253."""
    what = "a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253 characters)"
    text = _text(field, value, what)
    if len(text) > 253 or not DNS_SUBDOMAIN.match(text):
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def check_label_key(field: str, value: Any) -> str:
    what = "a label key such as app or example.com/tier"
    text = _text(field, value, what)
    prefix, _sep, name = text.rpartition("/")
    if len(prefix) > 253 or not LABEL_KEY.match(text) or len(name) > 63:
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def check_label_value(field: str, value: Any) -> str:
    what = "a non-empty label value (at most 63 characters of [A-Za-z0-9-_.])"
    text = _text(field, value, what)
    if not LABEL_VALUE.match(text):
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def check_data_key(field: str, value: Any) -> str:
    what = "a ConfigMap key ([-._a-zA-Z0-9], at most 253 characters)"
    text = _text(field, value, what)
    if not DATA_KEY.match(text) or text in (".", ".."):
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def is_http_url(value: Any) -> bool:
    """An http(s) URL with a host, a valid port if any, and no white space."""
    if not isinstance(value, str) or re.search(r"[\s\x00-\x1f]", value):
        return False
    try:
        parsed = urllib.parse.urlparse(value)
        parsed.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def check_url(field: str, value: Any) -> str:
    what = "an http:// or https:// URL"
    text = _text(field, value, what)
    if not is_http_url(text):
        raise invalid(field, f"{field} must be {what}, got {_short(text)}.")
    return text


def check_label_selector(field: str, value: Any) -> str:
    """A kubectl-style label selector that selects by at least one label value.

    Requirements are key=value, key==value, key!=value, key in (a,b), key notin (a,b), key and
    !key; keys and values must be valid. An empty selector, '*', 'app=', '=x', 'app in ()' or a
    selector of exclusions only ('!app', 'tier!=db') would select everything or nothing, and is
    refused.
    """
    example = "a label selector such as app=veritas,variant=canary"
    text = _text(field, value, example)
    positive = False
    for raw in _requirements(field, text):
        part = raw.strip()
        if not part:
            raise invalid(field, f"{field} has an empty requirement in {_short(text)}.")
        set_match = _SET_REQUIREMENT.match(part)
        if set_match:
            key, operator, listed = set_match.groups()
            values = [item.strip() for item in listed.split(",")]
            positive = positive or operator == "in"
        elif "!=" in part:
            key, _sep, single = part.partition("!=")
            values = [single.strip()]
        elif "=" in part:
            key, _sep, single = part.partition("=")
            values = [single[1:].strip() if single.startswith("=") else single.strip()]
            positive = True
        else:
            key, values = part.removeprefix("!"), []
        key = key.strip()
        if not LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
            raise invalid(
                field, f"{field} has an invalid label key {key!r} in {_short(text)}."
            )
        for item in values:
            if not LABEL_VALUE.match(item):
                raise invalid(
                    field,
                    f"{field} has an invalid value {item!r} for label {key} in {_short(text)} "
                    "(a non-empty value of at most 63 characters of [A-Za-z0-9-_.]).",
                )
    if not positive:
        raise invalid(
            field,
            f"{field} must select by at least one label value (key=value or key in (...)), "
            f"got {_short(text)}.",
        )
    return text


def _requirements(field: str, text: str) -> list[str]:
    """The comma-separated requirements of a selector; commas inside (...) do not split."""
    parts, current, depth = [], "", 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth not in (0, 1):
            break
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth != 0:
        raise invalid(field, f"{field} has unbalanced parentheses: {_short(text)}.")
    return [*parts, current]


def check_numbers(value: Any, field: str, unbounded: Iterable[str] = ()) -> None:
    """Every number in an option's value (in dicts and lists too) is finite and, unless the
    option is unbounded, at most NUMBER_LIMIT in size."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        limit = math.inf if field in unbounded else NUMBER_LIMIT
        if abs(value) > limit or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            what = (
                "a finite number"
                if limit == math.inf
                else f"a number from {-limit} to {limit}"
            )
            raise invalid(field, f"{field} must be {what}, got {value!r}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_numbers(item, f"{field}.{key}", unbounded)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_numbers(item, field, unbounded)


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _lookup(params: dict[str, Any], field: str) -> Any:
    """params['a']['b'] for 'a.b'; None when a part is unset."""
    value: Any = params
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


_CHECKS = {
    "namespaces": check_dns_label,
    "dns_labels": check_dns_label,
    "names": check_object_name,
    "label_keys": check_label_key,
    "label_values": check_label_value,
    "data_keys": check_data_key,
    "urls": check_url,
    "selectors": check_label_selector,
}


def validate_input(
    params: dict[str, Any], unbounded: Iterable[str] = (), **fields: Iterable[str]
) -> None:
    """Check the options named by kind, plus what every module shares.

    Kinds: namespaces and dns_labels (DNS-1123 labels: a container, a Service), names (object names),
    label_keys, label_values, data_keys (ConfigMap keys), urls, selectors (label selectors).
    A dotted field ('observe.prometheus_url') is an option inside a dict option. An unset
    option (None) is skipped; a list is checked element by element. Always: every number is
    finite and, unless named in unbounded (a Prometheus threshold in bytes, say), within
    NUMBER_LIMIT; the production guard's label and value are valid; a ledger reference is
    'namespace/name'.
    """
    for name, value in params.items():
        if name not in _NOT_NUMBERS:
            check_numbers(value, name, tuple(unbounded))
    for kind, names in fields.items():
        check = _CHECKS[kind]
        for field in names:
            value = _lookup(params, field)
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    check(field, item)
    if "production_label" in params:
        check_label_key("production_label", params["production_label"])
    if "production_value" in params:
        check_label_value("production_value", params["production_value"])
    ref = parse_ledger_ref(params.get("ledger"), params.get("namespace"))
    if ref is not None:
        check_dns_label("ledger", ref[0])
        check_object_name("ledger", ref[1])
