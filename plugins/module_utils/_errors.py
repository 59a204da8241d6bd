# Copyright: (c) 2026, Veritas SPARK team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type of veritas.chaos; only run_module (_runner.py), the end of a module's
main(), turns it into fail_json."""

from __future__ import annotations

from typing import Any


class ChaosError(Exception):
    """A failure that a module reports as ``fail_json(msg=..., reason=..., **details)``.

    ``reason`` is a short machine-readable code (``invalid_input``, ``not_found``,
    ``production_refused``, ``locked``, ``unhealthy``, ``blast_radius``, ``timeout``,
    ``api_error``, ``missing_library``) so that playbooks can branch on it.
    """

    def __init__(self, msg: str, reason: str = "error", **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.reason = reason
        self.details = details

    def to_fail_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(self.details)
        kwargs["msg"] = self.msg
        kwargs["reason"] = self.reason
        return kwargs
