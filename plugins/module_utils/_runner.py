# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end of every module's main(): the kubernetes check, ChaosError to fail_json, exit_json."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    HAS_KUBERNETES,
    KUBERNETES_IMPORT_ERROR,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


def run_module(
    module: AnsibleModule,
    action: Callable[[], dict[str, Any]],
    needs_kubernetes: bool = True,
    warnings: Callable[[dict[str, Any]], Iterable[str]] | None = None,
) -> None:
    """Run action() (validation included) and exit the module with its result.

    Fails with reason missing_library when needs_kubernetes and the kubernetes library is
    missing (action is not called), and with the error's msg, reason and details when action
    raises a ChaosError. warnings(result) names the warnings to emit before exit_json.
    """
    if needs_kubernetes and not HAS_KUBERNETES:
        module.fail_json(
            msg=missing_required_lib("kubernetes"),
            exception=KUBERNETES_IMPORT_ERROR,
            reason="missing_library",
        )
        return
    try:
        result = action()
    except ChaosError as exc:
        module.fail_json(**exc.to_fail_kwargs())
        return
    for warning in warnings(result) if warnings else ():
        module.warn(warning)
    module.exit_json(**result)
