"""Gateway API HTTPRoutes for the unit tests, in the shape the API server stores them."""

from __future__ import annotations

from typing import Any

HTTPROUTE_API = "gateway.networking.k8s.io/v1"


def httproute_path(name: str = "veritas-runtime", namespace: str = "lab") -> str:
    return f"/apis/{HTTPROUTE_API}/namespaces/{namespace}/httproutes/{name}"


def backend_refs(*weights: tuple[str, int | None], port: int = 8080) -> list[dict[str, Any]]:
    """One Service backendRef per (name, weight); a None weight is left out."""
    return [
        {"name": name, "port": port, **({} if weight is None else {"weight": weight})}
        for name, weight in weights
    ]


def httproute(
    *rules: dict[str, Any], name: str = "veritas-runtime", namespace: str = "lab"
) -> dict[str, Any]:
    return {
        "apiVersion": HTTPROUTE_API,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": "veritas-gateway"}], "rules": list(rules)},
    }
