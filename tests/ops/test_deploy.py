"""deploy/ cross-checked without a container engine: image targets, compose, Kubernetes with KEDA,
Prometheus rules and the Grafana dashboard against the code they deploy."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from circuits.actions import QUEUES, ActionRegistry
from circuits.settings import DEFAULT_ACTION_MODULES
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
POOLS = ("worker-core", "worker-ml", "worker-rag", "worker-graph", "worker-llm")
SERVICES = {"redis", "postgres", *POOLS, "beat", "ingest", "api", "flower", "prometheus", "grafana"}
#: Actions a pool's lean image deliberately leaves out, and the image target that runs them instead.
#: rag.answer sits on the llm queue but needs the RAG index and embedding model: a deployment that
#: uses it points its llm pool at the worker-rag image (whose extra includes llm).
ELSEWHERE = {"rag.answer": "worker-rag"}
PROJECT_PACKAGES = {"circuits", "workers", "intelligence", "integrations", "storage", "service", "interfaces", "tests"}


# --- reading the files ---------------------------------------------------------------------------


@cache
def dockerfile() -> dict[str, list[str]]:
    """Stage name -> its lines (continuations joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        found = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if found:
            current = stages.setdefault(found.group(1), [])
        current.append(line)
    return stages


def extras_of_target(target: str) -> list[str]:
    """The extras the image target's virtualenv installs (``pip install ".[a,b]"``)."""
    lines = dockerfile()[target]
    source = next(m.group(1) for line in lines if (m := re.search(r"COPY --from=(\S+) /venv", line)))
    installs = [m.group(1) for line in dockerfile()[source] if (m := re.search(r'pip install "\.\[([^\]]+)\]"', line))]
    assert len(installs) == 1, f"{source} installs the project {len(installs)} times"
    return [e.strip() for e in installs[0].split(",")]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@cache
def k8s() -> list[dict[str, Any]]:
    return [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def queues_of(command: list[str]) -> list[str]:
    return command[command.index("-Q") + 1].split(",") if "-Q" in command else list(QUEUES)


def pools() -> dict[str, tuple[str, list[str]]]:
    """compose worker service -> (image target, queues)."""
    services = compose()["services"]
    return {
        name: (spec["build"]["target"], queues_of(spec["command"]))
        for name, spec in services.items()
        if spec.get("command", [None])[:4] == ["celery", "-A", "workers", "worker"]
    }


# --- images -----------------------------------------------------------------------------------------


def test_every_pool_has_an_image_target_installing_its_extra() -> None:
    for pool in POOLS:
        assert pool in dockerfile(), f"no target {pool}"
        assert pool in extras_of_target(pool)
    defined = set(PROJECT["optional-dependencies"])
    for target in [*POOLS, "flower", "api"]:
        missing = set(extras_of_target(target)) - defined
        assert not missing, f"target {target} installs extras pyproject.toml lacks: {missing}"


def test_only_the_rag_target_installs_torch() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages_with_torch = [s for s, lines in dockerfile().items() if any("torch" in line for line in lines)]
    assert stages_with_torch == ["venv-worker-rag"], stages_with_torch
    assert "-e " not in text.replace("--", ""), "images install the package, not an editable checkout"


def _closure(requirements: list[str], extras: set[str] = frozenset()) -> set[str]:  # type: ignore[assignment]
    """Distribution names installed for ``requirements``, following the installed metadata here."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name = req.name.lower().replace("_", "-")
        if req.name == "circuit-os":
            for e in req.extras:
                todo += [(Requirement(r), "") for r in PROJECT["optional-dependencies"][e]]
            continue
        wanted = [(name, e) for e in req.extras]
        if name in seen and not wanted:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in requires:
            parsed = Requirement(r)
            if not parsed.marker or parsed.marker.evaluate({"extra": ""}):
                todo.append((parsed, ""))
            for _, e in wanted:
                if parsed.marker and parsed.marker.evaluate({"extra": e}):
                    todo.append((parsed, e))
    return seen


def installed_by(target: str) -> set[str]:
    return _closure([*PROJECT["dependencies"], *(f"circuit-os[{e}]" for e in extras_of_target(target))])


def _module_file(name: str) -> Path | None:
    """The project file of a module (``a.b`` -> a/b.py or a/b/__init__.py), or None (a name inside a module)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def third_party_imports(module: str) -> frozenset[str]:
    """Top-level names of the libraries ``module`` and the project modules it imports may import
    (at import time or inside functions: what an action needs when it runs)."""
    names: set[str] = set()
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = _module_file(mod)
        if path is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in found:
                top = name.split(".")[0]
                if top in PROJECT_PACKAGES:
                    todo.append(name)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    names.add(top)
    return frozenset(names)


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _needed_distributions(module: str) -> set[str]:
    dists = _distributions()
    return {d.lower().replace("_", "-") for name in third_party_imports(module) for d in dists.get(name, [])}


def test_every_image_target_installs_what_its_pools_actions_import() -> None:
    registry = ActionRegistry.from_modules(DEFAULT_ACTION_MODULES)
    problems = []
    for pool, (target, queues) in pools().items():
        have = installed_by(target)
        for spec in registry:
            if spec.queue not in queues:
                continue
            runs_on = ELSEWHERE.get(spec.name, target)
            lacking = _needed_distributions(spec.fn.__module__) - (have if runs_on == target else installed_by(runs_on))
            if lacking:
                problems.append(f"{pool} ({runs_on}): {spec.name} imports {sorted(lacking)}")
    assert not problems, "\n".join(problems)


def test_the_lean_targets_carry_no_heavy_stack() -> None:
    heavy = {"torch", "chromadb", "xgboost", "xgboost-cpu", "sentence-transformers", "onnxruntime"}
    for target in ("worker-core", "worker-llm", "worker-graph"):
        assert not installed_by(target) & heavy, target


# --- compose ----------------------------------------------------------------------------------------


def test_compose_runs_every_service_and_every_queue() -> None:
    services = compose()["services"]
    assert SERVICES <= set(services), f"missing services: {SERVICES - set(services)}"
    for name, spec in services.items():
        if "build" in spec:
            assert spec["build"]["target"] in dockerfile(), f"{name}: no target {spec['build']['target']}"
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host's loopback"
        for dep in spec.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
    served = [q for _, queues in pools().values() for q in queues]
    assert sorted(set(served)) == sorted(QUEUES) and len(served) == len(QUEUES), "each queue: one pool"
    for pool, (target, _) in pools().items():
        assert pool == target, f"the {pool} pool runs the {target} image"
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert services["beat"]["deploy"]["replicas"] == 2  # redbeat's lock makes a second beat a standby


def test_the_dockerfile_default_commands_match_compose() -> None:
    for pool, (_, queues) in pools().items():
        cmd = next(line for line in dockerfile()[pool] if line.startswith("CMD"))
        assert queues_of(json.loads(cmd[3:].strip())) == queues, pool


def test_the_llm_pool_runs_on_threads_everywhere() -> None:
    """LLM steps wait on the network: the llm workers run a thread pool in compose, the image and k8s."""
    composed = compose()["services"]["worker-llm"]["command"]
    image = json.loads(next(line for line in dockerfile()["worker-llm"] if line.startswith("CMD"))[3:].strip())
    deployment = next(d for d in k8s() if d["kind"] == "Deployment" and d["metadata"]["name"] == "worker-llm")
    cluster = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    for command in (composed, image, cluster):
        assert command[command.index("-P") + 1] == "threads", command


# --- kubernetes -------------------------------------------------------------------------------------


def test_each_pool_autoscales_on_its_queues() -> None:
    docs = k8s()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "circuit-config")
    for pool, (_, queues) in pools().items():
        container = deployments[pool]["spec"]["template"]["spec"]["containers"][0]
        assert queues_of(container["command"]) == queues
        assert container["image"].rsplit("/", 1)[1].split(":")[0] == pool
        triggers = scaled[pool]["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        lists = {t["metadata"]["listName"] for t in triggers}
        for q in queues:  # kombu's Redis transport: the queue's list, plus one per priority step
            assert {q, f"{q}\x06\x163", f"{q}\x06\x166", f"{q}\x06\x169"} <= lists, (pool, q)
        assert all(t["metadata"]["addressFromEnv"] in configmap["data"] for t in triggers)
    for name, d in deployments.items():
        image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.rsplit("/", 1)[1].split(":")[0] in dockerfile(), f"{name}: {image}"
    assert deployments["beat"]["spec"]["replicas"] == 2


# --- prometheus and grafana -------------------------------------------------------------------------


@cache
def exported_series() -> set[str]:
    """Series names workers/metrics.py exports (counters get _total, histograms _bucket/_sum/_count)."""
    path = ROOT / "workers" / "metrics.py"
    if not path.exists():
        pytest.skip("workers/metrics.py does not exist yet")
    text = path.read_text()
    series: set[str] = set()
    pattern = r"(Counter|Histogram|Gauge|Summary|GaugeMetricFamily|CounterMetricFamily)\(\s*\"(circuit_\w+)\""
    for kind, name in re.findall(pattern, text):
        if kind.startswith("Counter"):
            series |= {name.removesuffix("_total") + "_total"}
        elif kind in ("Histogram", "Summary"):
            series |= {f"{name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            series.add(name)
    return series


def used_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(circuit_\w+)", expr))


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def test_the_metrics_of_the_brief_exist() -> None:
    wanted = {
        "circuit_events_total",
        "circuit_runs_total",
        "circuit_run_duration_seconds_bucket",
        "circuit_step_duration_seconds_bucket",
        "circuit_step_retries_total",
        "circuit_queue_depth",
        "circuit_ingest_lag_seconds",
        "circuit_ledger_lag_seconds",
    }
    assert wanted <= exported_series(), wanted - exported_series()


def test_every_metric_an_alert_uses_exists() -> None:
    rules = _alert_rules()
    names = {r["alert"] for r in rules}
    assert {"CircuitRunsFailing", "CircuitQueueStuck", "CircuitLedgerLag"} <= names
    for rule in rules:
        unknown = used_metrics(rule["expr"]) - exported_series()
        assert not unknown, f"{rule['alert']} uses {unknown}"


def test_every_metric_the_dashboard_uses_exists() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "circuit-os.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"]]
    used = set().union(*(used_metrics(e) for e in exprs))
    assert not used - exported_series(), used - exported_series()
    assert len(used) >= 8


def test_prometheus_scrapes_the_services_that_exist() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    services = compose()["services"]
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "alerts.yml" in mounts and "prometheus.yml" in mounts
    port = compose()["x-circuit"]["environment"]["CIRCUIT_METRICS_PORT"]
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert set(sd["names"]) <= set(services) and str(sd["port"]) == port, job["job_name"]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                assert target.split(":")[0] in services, target


# --- CI ---------------------------------------------------------------------------------------------


def test_ci_runs_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^(make test)\b", readme, re.M)
    assert command, "the README names no test command"
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert any(command.group(1) in r.splitlines()[-1] for r in runs if r)
    assert workflow["permissions"] == {"contents": "read"}  # forks' pull requests run with a read-only token
