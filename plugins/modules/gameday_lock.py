# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gameday_lock
short_description: Take or release the per-topology game-day lock (a Lease with holder and expiry)
version_added: 1.0.0
description:
  - Two game days on the same topology at once collide, both inject faults, both restore and each judges the
    other's effects. A game day takes this lock in its pre-flight and releases it at the end.
  - The lock is a C(coordination.k8s.io/v1) Lease in O(namespace) named O(name), with O(holder) as its
    C(holderIdentity) and O(duration) as its C(leaseDurationSeconds). It expires O(duration) seconds after its
    last renewal, so a crashed or interrupted run blocks others for at most that long.
  - O(state=present) acquires the lock when there is none, renews it when O(holder) already has it, and takes it
    over when another holder's lock has expired. When another holder has a lock that has not expired it waits up to
    O(wait) seconds for it to be released or to expire, then fails with C(reason=locked), naming the holder, its
    purpose and when the lock expires.
  - A renewal writes a new C(renewTime) (and the current O(duration) and O(purpose)) and keeps C(acquireTime). It is
    a change, so running O(state=present) twice reports V(true) both times; renew during a long game day to keep the
    lock from expiring.
  - O(state=absent) releases the lock by deleting the Lease, only when O(holder) has it, unless O(force=true). A
    Lease that does not exist, or has no holder, is not changed.
  - O(purpose) is recorded in the Lease annotation C(veritas.chaos/lock-purpose) so that whoever is refused sees who
    holds the lock and why.
author:
  - Veritas SPARK team (@veritas-spark)
options:
  namespace:
    description:
      - Namespace of the topology, where the Lease lives.
    type: str
    required: true
  name:
    description:
      - Name of the Lease, one per topology, for example C(veritas-gameday-bluegreen).
    type: str
    default: veritas-gameday
  holder:
    description:
      - Identity of this run, written as the Lease's C(holderIdentity), for example the playbook and a run id.
      - The same holder renews and releases its own lock; make it unique per run, or two runs with the same
        identity share the lock.
    type: str
    required: true
  state:
    description:
      - V(present) acquires, renews or takes over the lock; V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  duration:
    description:
      - Seconds the lock holds after its last renewal. After that another holder may take it over.
      - Longer than the game day (or than the time between renewals), shorter than you want a crashed run to block.
    type: int
    default: 900
  purpose:
    description:
      - What holds the lock, for example C(gameday-bluegreen scenario 3 by alice), recorded in the annotation
        C(veritas.chaos/lock-purpose) and shown to whoever is refused.
      - When not set, a renewal keeps the recorded purpose and an acquisition or takeover records none.
    type: str
  wait:
    description:
      - Seconds to wait for a lock held by another holder to be released or to expire before failing. V(0) fails at once.
      - Only with O(state=present).
    type: int
    default: 0
  poll_interval:
    description:
      - Seconds between two looks at a held lock while waiting (see O(wait)).
    type: float
    default: 5
  force:
    description:
      - With O(state=absent), delete the Lease even when another holder has it, for example after an interrupted
        run whose holder identity is lost.
      - Not allowed with O(state=present); a held lock cannot be forced, release it first.
    type: bool
    default: false
extends_documentation_fragment:
  - veritas.chaos.auth
  - veritas.chaos.auth.guard
  - veritas.chaos.attributes
  - veritas.chaos.attributes.actiongroup_k8s
attributes:
  check_mode:
    support: full
    details:
      - A server-side dry run (C(dryRun=All)) of the create, replace or delete. A lock held by another holder is refused
        (after O(wait)) as it would be for real; nothing is taken, renewed or released.
  diff_mode:
    support: full
    details: The Lease before and after, without C(resourceVersion), C(generation) and C(managedFields).
  idempotent:
    support: partial
    details:
      - O(state=absent) is idempotent. O(state=present) renews a lock this holder already has, which moves
        C(renewTime) on and reports a change every time.
notes:
  - The production guard applies to O(namespace).
  - Every write carries the Lease's C(resourceVersion), so two runs racing for a free or expired lock cannot both win,
    and a release never deletes a lock that another run took over in the meantime; the loser fails with
    C(reason=locked).
  - Clocks matter, expiry is computed from C(renewTime) on the controller; keep controller clocks in sync.
seealso:
  - module: veritas.chaos.service_selector
  - name: Kubernetes Leases
    description: The C(coordination.k8s.io/v1) Lease object used as the lock.
    link: https://kubernetes.io/docs/concepts/architecture/leases/
"""

EXAMPLES = r"""
- name: Take the blue-green game-day lock in the pre-flight (wait up to 5 minutes for another game day)
  veritas.chaos.gameday_lock:
    namespace: veritas
    name: veritas-gameday-bluegreen
    holder: "gameday-bluegreen-{{ awx_job_id | default(lookup('ansible.builtin.pipe', 'date +%s')) }}"
    purpose: "gameday-bluegreen scenarios 3, 5, 6 from {{ inventory_hostname }}"
    duration: 1800
    wait: 300
  register: gameday_lock

- name: Renew it before a long scenario
  veritas.chaos.gameday_lock:
    namespace: veritas
    name: veritas-gameday-bluegreen
    holder: "{{ gameday_lock.lock.holder }}"
    duration: 1800

- name: Release it at the end (in an always section)
  veritas.chaos.gameday_lock:
    namespace: veritas
    name: veritas-gameday-bluegreen
    holder: "{{ gameday_lock.lock.holder }}"
    state: absent

- name: Remove the lock of an interrupted run whose holder is lost
  veritas.chaos.gameday_lock:
    namespace: veritas
    name: veritas-gameday-bluegreen
    holder: operator-alice
    state: absent
    force: true
"""

RETURN = r"""
lock:
  description: The Lease after the task (in check mode, as it would be); null when there is none, after a release or when there was none to release.
  returned: success
  type: dict
  contains:
    name:
      description: Lease name.
      type: str
      sample: veritas-gameday-bluegreen
    namespace:
      description: Lease namespace.
      type: str
      sample: veritas
    holder:
      description: The Lease's C(holderIdentity).
      type: str
      sample: gameday-bluegreen-1764419000
    acquired_at:
      description: When the holder acquired the lock (C(acquireTime)); a renewal keeps it.
      type: str
      sample: "2026-11-29T12:00:00.000000Z"
    renewed_at:
      description: When the lock was last renewed (C(renewTime)).
      type: str
      sample: "2026-11-29T12:10:00.000000Z"
    expires_at:
      description: When the lock expires unless renewed (C(renewTime) + C(leaseDurationSeconds)).
      type: str
      sample: "2026-11-29T12:40:00.000000Z"
    duration:
      description: The Lease's C(leaseDurationSeconds).
      type: int
      sample: 1800
    purpose:
      description: The recorded purpose; null without one.
      type: str
      sample: gameday-bluegreen scenarios 3, 5, 6 from localhost
previous_holder:
  description: The Lease's holder before the task; null when there was no Lease or it had no holder.
  returned: success
  type: str
  sample: gameday-bluegreen-1764418000
decision:
  description:
    - What the task did, V(acquire) (no Lease), V(renew) (ours), V(take_over) (another holder's expired lock),
      V(release) (deleted) or V(none) (nothing to release).
  returned: success
  type: str
  sample: acquire
taken_over:
  description: Whether an expired lock of another holder (see RV(previous_holder)) was taken over.
  returned: success
  type: bool
  sample: false
waited:
  description: Seconds spent waiting for another holder's lock (see O(wait)).
  returned: success
  type: float
  sample: 0.0
"""

import re
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.veritas.chaos.plugins.module_utils._args import (
    AUTH_ARG_SPEC,
    GUARD_ARG_SPEC,
    build_argument_spec,
)
from ansible_collections.veritas.chaos.plugins.module_utils._client import (
    KubeClient,
    get_client,
    strip_volatile,
)
from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError
from ansible_collections.veritas.chaos.plugins.module_utils._guard import (
    guard_namespace,
)
from ansible_collections.veritas.chaos.plugins.module_utils._lock import (
    TAKE_OVER,
    LeaseLock,
    lease_summary,
)
from ansible_collections.veritas.chaos.plugins.module_utils._runner import run_module
from ansible_collections.veritas.chaos.plugins.module_utils._validate import (
    validate_input,
)

# An object name (RFC 1123 subdomain), which is what the API accepts for a Lease.
LEASE_NAME = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
RELEASE = "release"
NONE = "none"


def validate_params(params: dict[str, Any]) -> None:
    validate_input(params, namespaces=("namespace",))
    checks = (
        (
            "name",
            len(params["name"] or "") <= 253
            and bool(LEASE_NAME.match(params["name"] or "")),
            "a Kubernetes object name (lowercase letters, digits, '-' and '.')",
        ),
        (
            "holder",
            bool((params["holder"] or "").strip()),
            "a non-empty identity of this run",
        ),
        ("duration", params["duration"] >= 1, "an integer of at least 1"),
        ("wait", params["wait"] >= 0, "an integer of at least 0"),
        ("poll_interval", params["poll_interval"] > 0, "a number above 0"),
        (
            "force",
            not (params["force"] and params["state"] == "present"),
            "false with state=present (a held lock cannot be forced; release it with state=absent first)",
        ),
    )
    for field, ok, expected in checks:
        if not ok:
            raise ChaosError(
                f"{field} must be {expected}, got {params[field]!r}.",
                reason="invalid_input",
                field=field,
            )


def _holder_of(lease: dict[str, Any] | None) -> str | None:
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def acquire(
    lock: LeaseLock, params: dict[str, Any], check_mode: bool
) -> tuple[str, float]:
    """Acquire, renew or take over, waiting up to params['wait'] for another holder's lock."""
    begin = time.monotonic()
    deadline = begin + params["wait"]
    while True:
        try:
            return lock.acquire(dry_run=check_mode), round(time.monotonic() - begin, 3)
        except ChaosError as exc:
            if exc.reason != "locked":
                raise
            if time.monotonic() >= deadline:
                if params["wait"] <= 0:
                    raise
                waited = round(time.monotonic() - begin, 3)
                raise ChaosError(
                    f"{exc.msg} Waited {params['wait']} seconds for it.",
                    reason=exc.reason,
                    waited=waited,
                    **exc.details,
                ) from exc
        time.sleep(min(params["poll_interval"], max(0.0, deadline - time.monotonic())))


def run_lock(
    client: KubeClient, params: dict[str, Any], check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    validate_params(params)
    namespace = params["namespace"]
    guard_namespace(client, namespace, params)
    lock = LeaseLock(
        client,
        namespace,
        params["name"],
        params["holder"],
        params["duration"],
        purpose=params["purpose"],
        activity="game day",
    )
    result: dict[str, Any] = {"changed": False, "taken_over": False, "waited": 0.0}
    if params["state"] == "present":
        decision, waited = acquire(lock, params, check_mode)
        before, after = lock.before, lock.written
        result.update(
            changed=True,
            decision=decision,
            taken_over=decision == TAKE_OVER and _holder_of(before) is not None,
            waited=waited,
        )
    else:
        released = lock.release_held(force=params["force"], dry_run=check_mode)
        before = lock.before
        if released is None:
            after = before
            result["decision"] = NONE
            result["msg"] = (
                f"Lease {namespace}/{params['name']} "
                + ("does not exist" if before is None else "has no holder")
                + "; nothing to release."
            )
        else:
            before, after = released, None
            result.update(changed=True, decision=RELEASE)
    result["lock"] = lease_summary(after)
    result["previous_holder"] = _holder_of(before)
    if want_diff:
        result["diff"] = {
            "before": strip_volatile(before) or {},
            "after": strip_volatile(after) or {},
        }
    return result


def main() -> None:
    argument_spec = build_argument_spec(
        AUTH_ARG_SPEC,
        GUARD_ARG_SPEC,
        namespace={"type": "str", "required": True},
        name={"type": "str", "default": "veritas-gameday"},
        holder={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        duration={"type": "int", "default": 900},
        purpose={"type": "str"},
        wait={"type": "int", "default": 0},
        poll_interval={"type": "float", "default": 5},
        force={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def action() -> dict[str, Any]:
        validate_params(module.params)
        return run_lock(
            get_client(module.params), module.params, module.check_mode, module._diff
        )

    run_module(module, action)


if __name__ == "__main__":
    main()
