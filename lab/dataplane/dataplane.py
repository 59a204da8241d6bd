#!/usr/bin/env python3
"""The lab's data plane: HAProxy configuration and the controller that drives it.

HAProxy (Debian's package) listens on these frontends:
  * canary frontends (config.yml `canary_frontends`), one per canary topology: each request is
                drawn for `control` or `canary` with the weights of the frontend's source (as
                Envoy's weighted clusters do), then balanced over that variant's Ready pods:
      - canary           the ConfigMap's weights (veritas-traffic-config);
      - canary_httproute the backendRefs' weights of a Gateway API HTTPRoute (veritas-hr-route);
  * bluegreen - the pods that match the Service's selector and are Ready.

The controller follows the traffic ConfigMap, the HTTPRoute, the Service and the runtime pods
through watches and applies the difference to HAProxy through its runtime API (stats socket):
  * pods       -> dynamic servers (`add server`, `set server ... addr|state`, `del server`),
                  one per pod, named after the pod, in the backend of its variant / colour;
  * weights    -> `set map` on <frontend>.map (draw threshold, which variants are on, fallback);
  * selector   -> `set map` on bluegreen.map (the active colour backend).

Every response carries X-Veritas-Variant (the variant: control, canary, blue, green) and
X-Veritas-Pod (server name).

CLI:
  dataplane.py render --config C --run-dir D      write haproxy.cfg and the map files into D
  dataplane.py controller --config C --run-dir D  run the controller (needs KUBECONFIG)
  dataplane.py addresses --config C               print the listening addresses
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "config.yml"
DRAW_SCALE = 10000  # the canary draw is rand(DRAW_SCALE) < threshold

log = logging.getLogger("dataplane")


# --------------------------------------------------------------------------- config

HTTPROUTE_GROUP, HTTPROUTE_VERSION, HTTPROUTE_PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
HTTPROUTE_DEFAULT_WEIGHT = 1  # the Gateway API's default for a backendRef without a weight
FALLBACK_ANNOTATION = "lab.veritas.io/fallback"  # on an HTTPRoute: "false" turns fallback off


def load_config(path: str | os.PathLike | None = None) -> dict:
    path = Path(path or os.environ.get("DATAPLANE_CONFIG") or DEFAULT_CONFIG)
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    if os.environ.get("DATAPLANE_NAMESPACE"):
        cfg["namespace"] = os.environ["DATAPLANE_NAMESPACE"]
    return cfg


def canary_frontends(cfg: dict) -> list[dict]:
    """The canary frontends of config.yml (`canary_frontends`: names of sections), each as one
    dict with every setting resolved: name, port, namespace, weights_from, variants, variant_label,
    pod_selector, default_weights, fallback_when_empty, prefix and backends (variant -> HAProxy
    backend name), plus the section's own keys (configmap, httproute)."""
    out = []
    for name in cfg.get("canary_frontends") or ["canary"]:
        sec = dict(cfg[name])
        prefix = str(sec.get("backend_prefix") or "")
        variants = list(sec["variants"])
        weights_from = sec.get("weights_from", "configmap")
        if weights_from not in ("configmap", "httproute"):
            raise ValueError(f"{name}: weights_from must be configmap or httproute, got {weights_from!r}")
        sec.update(
            name=name,
            port=cfg["haproxy"][f"{name}_port"],
            namespace=sec.get("namespace") or cfg["namespace"],
            weights_from=weights_from,
            variants=variants,
            variant_label=sec.get("variant_label", "variant"),
            pod_selector=dict(sec.get("pod_selector") or {}),
            default_weights=dict(sec.get("default_weights") or {variants[0]: 100}),
            fallback_when_empty=bool(sec.get("fallback_when_empty", True)),
            prefix=prefix,
            backends={v: prefix + v for v in variants},
        )
        out.append(sec)
    names = [b for f in out for b in f["backends"].values()] + list(cfg["bluegreen"]["colours"]) + ["be_none"]
    if len(set(names)) != len(names):
        raise ValueError(f"HAProxy backend names collide (set backend_prefix): {names}")
    return out


def addresses(cfg: dict) -> dict:
    h = cfg["haproxy"]
    out = {f["name"]: f"http://{h['bind']}:{f['port']}" for f in canary_frontends(cfg)}
    out.update({
        "bluegreen": f"http://{h['bind']}:{h['bluegreen_port']}",
        "metrics": f"http://{h['bind']}:{h['stats_port']}/metrics",
        "stats": f"http://{h['bind']}:{h['stats_port']}/stats",
    })
    return out


# --------------------------------------------------------------------------- rendering

LOG_FORMAT = (
    '{"t":%Ts.%ms,"frontend":"%f","variant":"%b","pod":"%s","status":%ST,'
    '"bytes":%B,"tt_ms":%Ta,"tr_ms":%Tr,"retries":%rc,"method":"%HM","path":"%HP",'
    '"termination":"%tsc"}'
)


def render_canary_frontend(f: dict, bind: str, run_dir: Path) -> list[str]:
    """One canary frontend: draw control / canary with the map's threshold, fall back to the
    other variant when the one drawn has no server up (if allowed and that one is on)."""
    control, canary = f["variants"][:2]
    bc, bk = f["backends"][control], f["backends"][canary]
    cmap = run_dir / f"{f['name']}.map"
    lines = [
        f"frontend fe_{f['name']}",
        f"    bind {bind}:{f['port']}",
        f"    http-request set-var(txn.draw) rand({DRAW_SCALE})",
        f"    http-request set-var(txn.threshold) str(threshold),map_str_int({cmap},0)",
        "    acl pick_canary var(txn.draw),sub(txn.threshold) -m int lt 0",
        f"    acl control_on str({control}_on),map_str_int({cmap},0) -m int gt 0",
        f"    acl canary_on str({canary}_on),map_str_int({cmap},0) -m int gt 0",
        f"    acl fallback str(fallback),map_str_int({cmap},0) -m int gt 0",
        f"    acl control_up nbsrv({bc}) gt 0",
        f"    acl canary_up nbsrv({bk}) gt 0",
        "    use_backend be_none if !control_on !canary_on",
        f"    use_backend {bk} if pick_canary canary_up",
        f"    use_backend {bc} if pick_canary fallback control_on control_up",
        f"    use_backend {bk} if pick_canary",
        f"    use_backend {bc} if control_up",
        f"    use_backend {bk} if fallback canary_on canary_up",
        f"    default_backend {bc}",
    ]
    if not f["prefix"]:  # backend name = variant
        lines.append("    http-response set-header X-Veritas-Variant %b")
    # else: each backend sets X-Veritas-Variant to its variant (backend rules run first)
    lines += ["    http-response set-header X-Veritas-Pod %s", ""]
    return lines


def render_haproxy_cfg(cfg: dict, run_dir: Path) -> str:
    h = cfg["haproxy"]
    fronts = canary_frontends(cfg)
    colours = cfg["bluegreen"]["colours"]
    sock = run_dir / "haproxy.sock"
    bmap = run_dir / "bluegreen.map"
    bind = h["bind"]
    lines = [
        "# Generated by lab/dataplane/dataplane.py render - do not edit.",
        "global",
        "    log stdout format raw local0 info",
        f"    stats socket {sock} mode 600 level admin",
        "    stats timeout 30s",
        f"    maxconn {h['maxconn']}",
        f"    nbthread {h['nbthread']}",
        "    hard-stop-after 5s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        f"    log-format '{LOG_FORMAT}'",
        f"    timeout connect {h['timeout_connect']}",
        f"    timeout client {h['timeout_client']}",
        f"    timeout server {h['timeout_server']}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    option http-keep-alive",
        "    retries 2",
        "    retry-on conn-failure empty-response",
        "    option redispatch 1",
        "",
        "frontend fe_stats",
        f"    bind {bind}:{h['stats_port']}",
        "    no log",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
        "",
    ]
    for f in fronts:
        lines += render_canary_frontend(f, bind, run_dir)
    lines += [
        "frontend fe_bluegreen",
        f"    bind {bind}:{h['bluegreen_port']}",
        f"    use_backend %[str(active),map({bmap},be_none)]",
        "    default_backend be_none",
        "    http-response set-header X-Veritas-Variant %b",
        "    http-response set-header X-Veritas-Pod %s",
        "",
        "backend be_none",
        (
            '    http-request return status 503 content-type text/plain string "no backend selected\\n"'
            " hdr X-Veritas-Variant none"
        ),
        "",
    ]
    for f in fronts:
        for v in f["variants"]:
            lines += [f"backend {f['backends'][v]}", "    balance roundrobin"]
            if f["prefix"]:
                lines.append(f"    http-response set-header X-Veritas-Variant {v}")
            lines.append("")
    for name in colours:
        lines += [f"backend {name}", "    balance roundrobin", ""]
    return "\n".join(lines)


def initial_maps(cfg: dict) -> dict[str, str]:
    """{map file name: content}: every canary frontend off (503) and no active colour, until
    the controller has seen the cluster."""
    out = {}
    for f in canary_frontends(cfg):
        control, canary = f["variants"][:2]
        out[f"{f['name']}.map"] = f"threshold 0\n{control}_on 0\n{canary}_on 0\nfallback 0\n"
    out["bluegreen.map"] = "active none\n"
    return out


def render(cfg: dict, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in initial_maps(cfg).items():
        (run_dir / name).write_text(text)
    out = run_dir / "haproxy.cfg"
    out.write_text(render_haproxy_cfg(cfg, run_dir))
    return out


# --------------------------------------------------------------------------- HAProxy runtime API


class HAProxyError(RuntimeError):
    pass


class HAProxyAPI:
    def __init__(self, sock_path: str | os.PathLike, timeout: float = 5.0):
        self.sock_path = str(sock_path)
        self.timeout = timeout

    def cmd(self, line: str) -> str:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.sock_path)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        finally:
            s.close()
        return b"".join(chunks).decode(errors="replace")

    def checked(self, line: str, ok_empty: bool = True) -> str:
        out = self.cmd(line)
        low = out.strip().lower()
        bad = ("unknown", "no such", "error", "not found", "cannot", "failed", "invalid", "require")
        if low and any(b in low for b in bad) and "new server registered" not in low:
            raise HAProxyError(f"{line!r}: {out.strip()}")
        return out

    def servers_state(self) -> dict[str, dict[str, dict]]:
        """{backend: {server: {addr, port, ready}}} from `show servers state`."""
        out = self.cmd("show servers state")
        header: list[str] | None = None
        res: dict[str, dict[str, dict]] = {}
        for raw in out.splitlines():
            if raw.startswith("# be_id"):
                header = raw[2:].split()
                continue
            if not raw or raw.startswith("#") or header is None:
                continue
            parts = raw.split()
            if len(parts) < len(header):
                continue
            row = dict(zip(header, parts))
            admin = int(row["srv_admin_state"])
            res.setdefault(row["be_name"], {})[row["srv_name"]] = {
                "addr": row["srv_addr"],
                "port": int(row.get("srv_port", "0") or 0),
                "ready": (admin & 0x01) == 0 and (admin & 0x04) == 0,  # not forced/config maint
            }
        return res

    def show_map(self, path: str) -> dict[str, str]:
        res = {}
        for raw in self.cmd(f"show map {path}").splitlines():
            parts = raw.split()
            if len(parts) >= 3:
                res[parts[1]] = parts[2]
        return res

    def info(self) -> dict[str, str]:
        res = {}
        for raw in self.cmd("show info").splitlines():
            if ":" in raw:
                k, v = raw.split(":", 1)
                res[k.strip()] = v.strip()
        return res


# --------------------------------------------------------------------------- desired state


@dataclass
class PodView:
    name: str
    labels: dict
    address: tuple[str, int] | None
    ready: bool
    namespace: str | None = None  # None: the data plane's namespace (config.yml `namespace`)


class ClusterView:
    """What the watches have seen. `sources` holds each canary frontend's weight source (the
    ConfigMap's data, or the HTTPRoute as a dict), None while it does not exist; `configmap` is
    the first frontend's ("canary")."""

    def __init__(self):
        self.pods: dict[str, PodView] = {}
        self.sources: dict[str, dict | None] = {}
        self.selector: dict | None = None  # service selector, or None if the service is absent
        self.last_event = 0.0
        self.last_event_what = ""

    @property
    def configmap(self) -> dict | None:
        return self.sources.get("canary")

    @configmap.setter
    def configmap(self, data: dict | None):
        self.sources["canary"] = data


def parse_address(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    host, _, port = value.rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        return None


def pod_view(pod, annotation: str) -> PodView:
    md = pod.metadata
    st = pod.status
    ready = False
    if st is not None and st.phase == "Running" and md.deletion_timestamp is None:
        for c in st.conditions or []:
            if c.type == "Ready" and c.status == "True":
                ready = True
    addr = parse_address((md.annotations or {}).get(annotation))
    return PodView(md.name, dict(md.labels or {}), addr, ready and addr is not None, md.namespace)


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def configmap_weights(data: dict | None, f: dict, previous: dict | None) -> tuple[dict, bool]:
    """Weights per variant and the fallback flag from a ConfigMap's data (frontend `f`)."""
    variants = f["variants"]
    fallback = bool(f.get("fallback_when_empty", True))
    if data is None:
        w = {v: int(f["default_weights"].get(v, 0)) for v in variants}
        return w, fallback
    weights = {}
    for v in variants[:2]:
        raw = str(data.get(v, "0")).strip().rstrip("%")
        try:
            val = float(raw)
            if val < 0:
                raise ValueError(raw)
        except ValueError:
            log.warning("configmap: bad weight %s=%r, keeping previous", v, raw)
            if previous is not None:
                return previous, fallback
            val = 0.0
        weights[v] = val
    if "fallback" in data:
        fallback = _truthy(data["fallback"])
    return weights, fallback


def parse_weights(data: dict | None, cfg: dict, previous: dict | None) -> tuple[dict, bool]:
    """Weights per variant and the fallback flag from the ConfigMap data (the `canary` section)."""
    f = {"variants": cfg["canary"]["variants"], "default_weights": cfg["canary"]["default_weights"],
         "fallback_when_empty": cfg["canary"].get("fallback_when_empty", True)}
    return configmap_weights(data, f, previous)


def route_weights(route: dict | None, f: dict, previous: dict | None = None) -> tuple[dict, bool, list[str]]:
    """Weights per variant, the fallback flag and notes (what was left out, and why) from an
    HTTPRoute (frontend `f` with weights_from: httproute).

    As a Gateway API implementation reads it: rule f.httproute.rule of spec.rules; each of its
    backendRefs that is a Service (group "" / core, kind Service, the default) of the route's own
    namespace carries its weight (default 1, 0 = no traffic) to the variant f.httproute.backends
    maps the Service to; the weights of one variant add up. Route absent: default_weights. No such
    rule, or no usable backendRef: every weight 0 (no traffic, 503). A weight that is not a
    non-negative integer (the CRD's schema refuses them): the previous weights."""
    variants = f["variants"][:2]
    rcfg = f["httproute"]
    fallback = bool(f.get("fallback_when_empty", True))
    notes: list[str] = []
    if route is None:
        return {v: int(f["default_weights"].get(v, 0)) for v in f["variants"]}, fallback, notes
    meta = route.get("metadata") or {}
    ann = (meta.get("annotations") or {}).get(FALLBACK_ANNOTATION)
    if ann is not None:
        fallback = _truthy(ann)
    weights = dict.fromkeys(variants, 0)
    index = int(rcfg.get("rule", 0))
    rules = (route.get("spec") or {}).get("rules") or []
    if not 0 <= index < len(rules):
        notes.append(f"spec.rules[{index}] does not exist (the route has {len(rules)} rules): no traffic")
        return weights, fallback, notes
    route_ns = meta.get("namespace") or f.get("namespace")
    mapping = rcfg.get("backends") or {}
    used = 0
    for i, ref in enumerate((rules[index] or {}).get("backendRefs") or []):
        ref = ref or {}
        where = f"spec.rules[{index}].backendRefs[{i}] ({ref.get('name')})"
        group, kind = ref.get("group") or "", ref.get("kind") or "Service"
        if group not in ("", "core") or kind != "Service":
            notes.append(f"{where}: {kind}.{group or 'core'} is not a Service: left out")
            continue
        if ref.get("namespace") and ref["namespace"] != route_ns:
            notes.append(f"{where}: Service of namespace {ref['namespace']} (no ReferenceGrant here): left out")
            continue
        variant = mapping.get(ref.get("name"))
        if variant not in weights:
            notes.append(f"{where}: Service not mapped to a variant (httproute.backends): left out")
            continue
        raw = ref.get("weight")
        raw = HTTPROUTE_DEFAULT_WEIGHT if raw is None else raw
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            log.warning("httproute: bad weight %s=%r, keeping previous", where, raw)
            notes.append(f"{where}: bad weight {raw!r}: previous weights kept")
            return (dict(previous) if previous is not None else weights), fallback, notes
        weights[variant] += raw
        used += 1
    if not used:
        notes.append(f"spec.rules[{index}] has no backendRef to a mapped Service: no traffic")
    return weights, fallback, notes


def frontend_weights(source: dict | None, f: dict, previous: dict | None) -> tuple[dict, bool, list[str]]:
    """Weights, fallback flag and notes of canary frontend `f` from its source (ConfigMap data or
    HTTPRoute; None while it does not exist)."""
    if f["weights_from"] == "httproute":
        return route_weights(source, f, previous)
    w, fb = configmap_weights(source, f, previous)
    return w, fb, []


def draw_map(weights: dict, fallback: bool, variants: list[str]) -> dict[str, str]:
    """The canary map of a frontend: draw threshold (canary share of DRAW_SCALE), which variants
    are on (weight > 0), fallback."""
    control, canary = variants[:2]
    total = weights[control] + weights[canary]
    threshold = 0 if total <= 0 else round(weights[canary] * DRAW_SCALE / total)
    return {
        "threshold": str(threshold),
        f"{control}_on": "1" if weights[control] > 0 else "0",
        f"{canary}_on": "1" if weights[canary] > 0 else "0",
        "fallback": "1" if fallback else "0",
    }


def desired_state(view: ClusterView, cfg: dict, previous_weights: dict | None = None):
    """(backends {backend: {server: {addr, port, ready}}}, maps {map name: {key: value}},
    weights {frontend: {variant: weight}}, notes {frontend: [str]}) for the cluster view."""
    previous_weights = previous_weights or {}
    fronts = canary_frontends(cfg)
    bcfg = cfg["bluegreen"]
    clabel = bcfg["colour_label"]
    main_ns = cfg["namespace"]
    backends: dict[str, dict[str, dict]] = {}
    for f in fronts:
        for v in f["variants"]:
            backends[f["backends"][v]] = {}
    for c in bcfg["colours"]:
        backends[c] = {}
    svc_sel = view.selector or {}
    for p in view.pods.values():
        if p.address is None:
            continue
        ns = p.namespace or main_ns
        entry = {"addr": p.address[0], "port": p.address[1], "ready": p.ready}
        for f in fronts:
            v = p.labels.get(f["variant_label"])
            if (
                ns == f["namespace"]
                and v in f["variants"]
                and all(p.labels.get(k) == val for k, val in f["pod_selector"].items())
            ):
                backends[f["backends"][v]][p.name] = entry
        c = p.labels.get(clabel)
        if (
            ns == main_ns
            and c in bcfg["colours"]
            and svc_sel
            and all(p.labels.get(k) == val for k, val in svc_sel.items())
        ):
            backends[c][p.name] = entry
    maps: dict[str, dict[str, str]] = {}
    weights: dict[str, dict] = {}
    notes: dict[str, list[str]] = {}
    for f in fronts:
        w, fb, n = frontend_weights(view.sources.get(f["name"]), f, previous_weights.get(f["name"]))
        weights[f["name"]], notes[f["name"]] = w, n
        maps[f"{f['name']}.map"] = draw_map(w, fb, f["variants"])
    active = "none"
    if svc_sel:
        if svc_sel.get(clabel) in bcfg["colours"]:
            active = svc_sel[clabel]
        else:  # selector without the colour label: the colour of the matching pods, if one
            cols = {c for c in bcfg["colours"] if backends[c]}
            if len(cols) == 1:
                active = cols.pop()
    maps["bluegreen.map"] = {"active": active}
    return backends, maps, weights, notes


@dataclass(frozen=True)
class WatchSpec:
    """One list/watch of the controller: kind (pods, configmap, service, httproute), namespace,
    the object's name (None: every object with the pod label) and the canary frontend whose
    weight source it is."""

    kind: str
    namespace: str
    name: str | None = None
    frontend: str | None = None

    @property
    def key(self) -> str:
        return "/".join(x for x in (self.kind, self.namespace, self.name) if x)


def watch_specs(cfg: dict) -> list[WatchSpec]:
    """What the controller follows: the runtime pods of every namespace a frontend serves, each
    canary frontend's ConfigMap or HTTPRoute, the blue-green Service."""
    fronts = canary_frontends(cfg)
    namespaces = [cfg["namespace"]] + [f["namespace"] for f in fronts]
    specs = [WatchSpec("pods", ns) for ns in dict.fromkeys(namespaces)]
    for f in fronts:
        if f["weights_from"] == "httproute":
            specs.append(WatchSpec("httproute", f["namespace"], f["httproute"]["name"], f["name"]))
        else:
            specs.append(WatchSpec("configmap", f["namespace"], f["configmap"], f["name"]))
    specs.append(WatchSpec("service", cfg["namespace"], cfg["bluegreen"]["service"]))
    return specs


# --------------------------------------------------------------------------- controller


def _meta(obj) -> tuple[str, str | None]:
    """(name, resourceVersion) of a typed object or of a custom object (a dict)."""
    if isinstance(obj, dict):
        md = obj.get("metadata") or {}
        return md.get("name", ""), md.get("resourceVersion")
    return obj.metadata.name, obj.metadata.resource_version


def route_view(obj: dict) -> dict:
    """What the data plane keeps of an HTTPRoute: its metadata's name, namespace, annotations and
    generation, and its spec."""
    md = obj.get("metadata") or {}
    return {
        "metadata": {k: md.get(k) for k in ("name", "namespace", "annotations", "generation")},
        "spec": obj.get("spec") or {},
    }


class Controller:
    def __init__(self, cfg: dict, run_dir: Path, kubeconfig: str | None = None):
        self.cfg = cfg
        self.ns = cfg["namespace"]
        self.fronts = canary_frontends(cfg)
        self.run_dir = run_dir
        self.api = HAProxyAPI(run_dir / "haproxy.sock")
        self.kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
        self.view = ClusterView()
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.stop = threading.Event()
        self.weights: dict[str, dict] = {}  # per canary frontend
        self.notes: dict[str, list[str]] = {}
        self.status_path = run_dir / "controller-status.json"
        self.specs = watch_specs(cfg)
        self.synced = {s.key: False for s in self.specs}
        self.stats = {"reconciles": 0, "changes": 0, "last_apply_ms": None, "errors": 0}
        self.crd_missing_retry = 5.0  # seconds between lists while the HTTPRoute API is not there

    # -- kubernetes side
    def _api_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def _list_fn(self, spec: WatchSpec):
        """(list function, positional args, keyword args) for the spec's list and watch."""
        from kubernetes import client

        api_client = self._api_client()
        kw = {"field_selector": f"metadata.name={spec.name}"} if spec.name else {}
        if spec.kind == "httproute":
            fn = client.CustomObjectsApi(api_client).list_namespaced_custom_object
            return fn, (HTTPROUTE_GROUP, HTTPROUTE_VERSION, spec.namespace, HTTPROUTE_PLURAL), kw
        v1 = client.CoreV1Api(api_client)
        if spec.kind == "pods":
            kw = {"label_selector": self.cfg["controller"]["pod_label_selector"]}
            return v1.list_namespaced_pod, (spec.namespace,), kw
        if spec.kind == "configmap":
            return v1.list_namespaced_config_map, (spec.namespace,), kw
        return v1.list_namespaced_service, (spec.namespace,), kw

    def _watch_loop(self, spec: WatchSpec):
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self.stop.is_set():
            try:
                fn, args, kw = self._list_fn(spec)
                try:
                    lst = fn(*args, **kw)
                except ApiException as e:
                    if spec.kind != "httproute" or e.status != 404:
                        raise
                    # No HTTPRoute API (the CRD is not installed): as if the route did not
                    # exist, so the other frontends are not held up; list again later.
                    with self.lock:
                        first = not self.synced[spec.key] or self.view.sources.get(spec.frontend) is not None
                        self._replace(spec, [])
                        self.synced[spec.key] = True
                    if first:
                        log.warning("watch %s: the HTTPRoute API is not served (CRD missing?): "
                                    "default weights until it is", spec.key)
                        self._mark(f"{spec.key} list (no API)")
                    self.stop.wait(self.crd_missing_retry)
                    continue
                if isinstance(lst, dict):
                    items, rv = lst.get("items") or [], (lst.get("metadata") or {}).get("resourceVersion")
                else:
                    items, rv = lst.items, lst.metadata.resource_version
                with self.lock:
                    self._replace(spec, items)
                    self.synced[spec.key] = True
                self._mark(f"{spec.key} list")
                while not self.stop.is_set():
                    w = watch.Watch()
                    for ev in w.stream(fn, *args, resource_version=rv, timeout_seconds=60, **kw):
                        obj = ev["object"]
                        name, new_rv = _meta(obj)
                        rv = new_rv or rv
                        if ev["type"] == "BOOKMARK":
                            continue
                        with self.lock:
                            self._apply_event(spec, ev["type"], obj)
                        self._mark(f"{spec.key} {ev['type']} {name}")
                        if self.stop.is_set():
                            w.stop()
                            break
            except ApiException as e:
                if e.status != 410:
                    log.warning("watch %s: %s", spec.key, e.reason)
                    self.stop.wait(1.0)
            except Exception as e:  # noqa: BLE001 - keep following the cluster whatever happens
                log.warning("watch %s: %s: %s", spec.key, type(e).__name__, e)
                self.stop.wait(1.0)

    def pod_key(self, namespace: str | None, name: str) -> str:
        return name if not namespace or namespace == self.ns else f"{namespace}/{name}"

    def _replace(self, spec: WatchSpec, items):
        ann = self.cfg["controller"]["address_annotation"]
        if spec.kind == "pods":
            keep = {k: p for k, p in self.view.pods.items() if (p.namespace or self.ns) != spec.namespace}
            for p in items:
                pv = pod_view(p, ann)
                pv.namespace = pv.namespace or spec.namespace
                keep[self.pod_key(pv.namespace, pv.name)] = pv
            self.view.pods = keep
        elif spec.kind == "configmap":
            self.view.sources[spec.frontend] = dict(items[0].data or {}) if items else None
        elif spec.kind == "httproute":
            self.view.sources[spec.frontend] = route_view(items[0]) if items else None
        else:
            self.view.selector = dict(items[0].spec.selector or {}) if items else None

    def _apply_event(self, spec: WatchSpec, etype: str, obj):
        ann = self.cfg["controller"]["address_annotation"]
        deleted = etype == "DELETED"
        if spec.kind == "pods":
            key = self.pod_key(obj.metadata.namespace or spec.namespace, obj.metadata.name)
            if deleted:
                self.view.pods.pop(key, None)
            else:
                pv = pod_view(obj, ann)
                pv.namespace = pv.namespace or spec.namespace
                self.view.pods[key] = pv
        elif spec.kind == "configmap":
            self.view.sources[spec.frontend] = None if deleted else dict(obj.data or {})
        elif spec.kind == "httproute":
            self.view.sources[spec.frontend] = None if deleted else route_view(obj)
        else:
            self.view.selector = None if deleted else dict(obj.spec.selector or {})

    def _mark(self, what: str):
        self.view.last_event = time.time()
        self.view.last_event_what = what
        self.changed.set()

    # -- HAProxy side
    def reconcile(self, triggered: bool = True) -> int:
        with self.lock:
            if not all(self.synced.values()):
                return 0
            backends, maps, weights, notes = desired_state(self.view, self.cfg, self.weights)
            event_t, event_what = self.view.last_event, self.view.last_event_what
        self.weights, self.notes = weights, notes
        # Make before break: servers that should take traffic first, then the routing maps,
        # then the servers that should not (maint, and deleted once they have no connection).
        n = 0
        actual = self.api.servers_state()
        for be, want in backends.items():
            have = actual.get(be, {})
            for name, w in want.items():
                h = have.get(name)
                if h is None:
                    self.api.checked(f"add server {be}/{name} {w['addr']}:{w['port']} weight 1")
                    h = {"addr": w["addr"], "port": w["port"], "ready": False}
                    n += 1
                if (h["addr"], h["port"]) != (w["addr"], w["port"]):
                    self.api.checked(f"set server {be}/{name} addr {w['addr']} port {w['port']}")
                    n += 1
                if w["ready"] and not h["ready"]:
                    self.api.checked(f"set server {be}/{name} state ready")
                    n += 1
        for map_name, want in maps.items():
            n += self._apply_map(str(self.run_dir / map_name), want)
        for be, want in backends.items():
            have = actual.get(be, {})
            for name, h in have.items():
                w = want.get(name)
                if w is not None:
                    if h["ready"] and not w["ready"]:
                        self.api.checked(f"set server {be}/{name} state maint")
                        n += 1
                    continue
                if h["ready"]:
                    self.api.checked(f"set server {be}/{name} state maint")
                    n += 1
                out = self.api.cmd(f"del server {be}/{name}")
                if "deleted" in out.lower():
                    n += 1
                else:  # still has connections: retried at the next resync
                    log.debug("del server %s/%s: %s", be, name, out.strip())
        active = maps["bluegreen.map"]["active"]
        if n and triggered:
            ms = (time.time() - event_t) * 1000 if event_t else None
            self.stats["changes"] += n
            self.stats["last_apply_ms"] = ms
            log.info(
                "applied %d change(s), %.1f ms after event [%s]; weights=%s active=%s",
                n, ms or -1, event_what, weights, active,
            )
        elif n:  # found by the periodic resync (e.g. a server deleted once its connections ended)
            self.stats["changes"] += n
            log.info("applied %d change(s) on resync; weights=%s active=%s", n, weights, active)
        self.stats["reconciles"] += 1
        return n

    def _apply_map(self, path: str, want: dict) -> int:
        have = self.api.show_map(path)
        n = 0
        for k, v in want.items():
            if have.get(k) == v:
                continue
            verb = "set" if k in have else "add"
            self.api.checked(f"{verb} map {path} {k} {v}")
            n += 1
        return n

    def write_status(self):
        with self.lock:
            snap = {
                "namespace": self.ns,
                "synced": dict(self.synced),
                "pods": {
                    k: {"ready": p.ready, "address": p.address, "labels": p.labels,
                        "namespace": p.namespace or self.ns}
                    for k, p in self.view.pods.items()
                },
                "configmap": self.view.configmap,
                "selector": self.view.selector,
                "frontends": {
                    f["name"]: {
                        "port": f["port"],
                        "namespace": f["namespace"],
                        "weights_from": f["weights_from"],
                        "source": f.get("configmap") if f["weights_from"] == "configmap"
                        else f["httproute"]["name"],
                        "source_present": self.view.sources.get(f["name"]) is not None,
                        "weights": self.weights.get(f["name"]),
                        "notes": self.notes.get(f["name"], []),
                        "backends": f["backends"],
                    }
                    for f in self.fronts
                },
            }
        snap.update(self.stats)
        snap["weights"] = self.weights.get(self.fronts[0]["name"]) if self.fronts else None
        snap["time"] = time.time()
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snap, indent=1, default=str))
        tmp.replace(self.status_path)

    def run(self):
        for spec in self.specs:
            threading.Thread(target=self._watch_loop, args=(spec,), daemon=True).start()
        resync = float(self.cfg["controller"].get("resync_seconds", 2))
        last_status = 0.0
        while not self.stop.is_set():
            triggered = self.changed.wait(resync)
            self.changed.clear()
            try:
                self.reconcile(triggered)
            except (OSError, HAProxyError) as e:
                self.stats["errors"] += 1
                log.warning("reconcile: %s", e)
                self.stop.wait(0.5)
                self.changed.set()
            if time.time() - last_status > 1.0:
                last_status = time.time()
                try:
                    self.write_status()
                except OSError as e:
                    log.warning("status: %s", e)


# --------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=["render", "controller", "addresses"])
    ap.add_argument("--config", default=None)
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--format", choices=["text", "json", "env"], default="text")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    if args.command == "addresses":
        a = addresses(cfg)
        if args.format == "json":
            print(json.dumps(a))
        elif args.format == "env":
            for k, v in a.items():
                print(f"DATAPLANE_{k.upper()}={v}")
        else:
            for k, v in a.items():
                print(f"{k:16s} {v}")
        return 0
    if not args.run_dir:
        ap.error("--run-dir is required")
    run_dir = Path(args.run_dir).resolve()
    if args.command == "render":
        print(render(cfg, run_dir))
        return 0
    ctl = Controller(cfg, run_dir, args.kubeconfig)
    try:
        ctl.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
