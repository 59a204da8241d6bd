# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure blast-radius arithmetic and pod selection for pod_chaos."""

from __future__ import annotations

import math
import random
from typing import Any

from ansible_collections.veritas.chaos.plugins.module_utils._errors import ChaosError


def pods_to_kill(
    total: int, count: int | None = None, percent: int | None = None
) -> int:
    """How many of total pods a count or percent selects (percent rounds up, never above total)."""
    if count is not None and percent is not None:
        raise ChaosError(
            "count and percent are mutually exclusive.",
            reason="invalid_input",
            field="count, percent",
        )
    if count is not None:
        if count < 1:
            raise ChaosError(
                f"count must be an integer of at least 1, got {count}.",
                reason="invalid_input",
                field="count",
            )
        return min(count, total)
    if percent is not None:
        if not 1 <= percent <= 100:
            raise ChaosError(
                f"percent must be an integer from 1 to 100, got {percent}.",
                reason="invalid_input",
                field="percent",
            )
        return min(total, math.ceil(total * percent / 100.0))
    return min(1, total)


def blast_radius_refusal(
    selected: int, total: int, max_count: int | None, max_percent: int | None
) -> str | None:
    """Why killing selected of total pods exceeds the cap, or None when it is within it."""
    if max_count is not None and selected > max_count:
        return f"the selection of {selected} pods exceeds max_count={max_count}"
    if max_percent is not None and total > 0:
        share = selected * 100.0 / total
        if share > max_percent:
            return (
                f"the selection of {selected} of {total} pods ({share:.1f}%) "
                f"exceeds max_percent={max_percent}"
            )
    return None


def enforce_blast_radius(
    selected: int, total: int, max_count: int | None, max_percent: int | None, message: str
) -> None:
    """Raise 'blast_radius' (message with {refusal} filled in) when selected exceeds the cap."""
    refusal = blast_radius_refusal(selected, total, max_count, max_percent)
    if refusal:
        raise ChaosError(
            message.format(refusal=refusal),
            reason="blast_radius",
            matched=total,
            selected=selected,
        )


def validate_caps(max_count: int | None, max_percent: int | None) -> None:
    if max_count is not None and max_count < 1:
        raise ChaosError(
            f"max_count must be an integer of at least 1, got {max_count}.",
            reason="invalid_input",
            field="max_count",
        )
    if max_percent is not None and not 1 <= max_percent <= 100:
        raise ChaosError(
            f"max_percent must be an integer from 1 to 100, got {max_percent}.",
            reason="invalid_input",
            field="max_percent",
        )


def is_candidate(pod: dict[str, Any]) -> bool:
    """A pod that is alive (not terminating, not finished) counts towards the population."""
    metadata = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    return not metadata.get("deletionTimestamp") and phase not in (
        "Succeeded",
        "Failed",
    )


def is_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def choose(names: list[str], how_many: int, seed: int | None = None) -> list[str]:
    """A random choice of how_many names, sorted; a seed makes it repeatable."""
    chooser = random.Random(seed)
    return sorted(chooser.sample(sorted(names), how_many))
