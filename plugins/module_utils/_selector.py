# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decisions for Service selectors: validation, diff, patches and the previous-selector record."""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError

PREVIOUS_SELECTOR_ANNOTATION = "veritas.chaos/previous-selector"
ROLLED_BACK_FROM_ANNOTATION = "veritas.chaos/rolled-back-from"

# Label names and keys as Kubernetes defines them (also used by _validate.py).
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    + LABEL_NAME
    + "$"
)
_VALUE_RE = re.compile(r"^(" + LABEL_NAME + ")?$")


def validate_selector(selector: Any, field: str = "selector") -> dict[str, str]:
    """A non-empty mapping of valid label keys to valid label values."""
    if not isinstance(selector, dict) or not selector:
        raise ChaosError(
            f"{field} must be a non-empty mapping of label keys to values, got {selector!r}.",
            reason="invalid_input",
            field=field,
        )
    clean: dict[str, str] = {}
    for key, value in selector.items():
        text = "" if value is None else str(value)
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise ChaosError(
                f"{field} has an invalid label key {key!r}.",
                reason="invalid_input",
                field=field,
            )
        if (
            isinstance(value, (dict, list))
            or not _VALUE_RE.match(text)
            or len(text) > 63
        ):
            raise ChaosError(
                f"{field} has an invalid value {value!r} for label {key} (at most 63 characters of [A-Za-z0-9-_.]).",
                reason="invalid_input",
                field=field,
            )
        clean[key] = text
    if not any(clean.values()):
        raise ChaosError(
            f"{field} must select by at least one non-empty label value, got {selector!r}.",
            reason="invalid_input",
            field=field,
        )
    return clean


def selector_diff(
    current: dict[str, str] | None, desired: dict[str, str]
) -> dict[str, Any]:
    """Keys added, removed and changed between two selectors."""
    current = current or {}
    return {
        "added": {k: v for k, v in desired.items() if k not in current},
        "removed": {k: v for k, v in current.items() if k not in desired},
        "changed": {
            k: {"from": current[k], "to": v}
            for k, v in desired.items()
            if k in current and current[k] != v
        },
    }


def selectors_equal(
    current: dict[str, str] | None, desired: dict[str, str] | None
) -> bool:
    return dict(current or {}) == dict(desired or {})


def label_selector_string(selector: dict[str, str]) -> str:
    """The equality-based label selector for a list call, e.g. 'app=veritas,deployment=green'."""
    return ",".join(f"{key}={selector[key]}" for key in sorted(selector))


def encode_selector(selector: dict[str, str] | None) -> str:
    return json.dumps(dict(selector or {}), sort_keys=True, separators=(",", ":"))


def decode_selector(text: str | None) -> dict[str, str] | None:
    """The selector stored in an annotation; None when absent; an error when unreadable."""
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ChaosError(
            f"Annotation {PREVIOUS_SELECTOR_ANNOTATION} does not hold a JSON selector: {text!r}.",
            reason="invalid_state",
        ) from exc
    if not isinstance(value, dict):
        raise ChaosError(
            f"Annotation {PREVIOUS_SELECTOR_ANNOTATION} does not hold a JSON mapping: {text!r}.",
            reason="invalid_state",
        )
    return {str(k): str(v) for k, v in value.items()}


def switch_patch(
    current: dict[str, str] | None, desired: dict[str, str]
) -> dict[str, Any]:
    """Merge patch: set the new selector (null removes old keys) and record the old one."""
    selector: dict[str, Any] = {
        key: None for key in (current or {}) if key not in desired
    }
    selector.update(desired)
    return {
        "metadata": {
            "annotations": {
                PREVIOUS_SELECTOR_ANNOTATION: encode_selector(current),
                ROLLED_BACK_FROM_ANNOTATION: None,
            }
        },
        "spec": {"selector": selector},
    }


def rollback_patch(
    current: dict[str, str] | None, previous: dict[str, str]
) -> dict[str, Any]:
    """Merge patch: restore the recorded selector and consume the record, keeping where we came from."""
    selector: dict[str, Any] = {
        key: None for key in (current or {}) if key not in previous
    }
    selector.update(previous)
    return {
        "metadata": {
            "annotations": {
                PREVIOUS_SELECTOR_ANNOTATION: None,
                ROLLED_BACK_FROM_ANNOTATION: encode_selector(current),
            }
        },
        "spec": {"selector": selector},
    }
