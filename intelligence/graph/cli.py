"""``circuit-os graph ...``: run the embedded server, load the CRM data, ask the graph.

The group is the variable :data:`graph`; the main CLI attaches it. Commands
print JSON so their output can be piped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from circuits.errors import CircuitError

__all__ = ["graph"]

log = logging.getLogger(__name__)


def _settings() -> Any:
    from circuits.settings import get_settings

    return get_settings()


def _client() -> Any:
    from intelligence.graph.client import client_from_settings

    return client_from_settings(_settings())


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; a value that is a JSON number/bool/null is converted, anything else stays text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--param")
        try:
            parsed = json.loads(value)
            params[key] = parsed if isinstance(parsed, int | float | bool) or parsed is None else value
        except ValueError:
            params[key] = value
    return params


@click.group("graph")
def graph() -> None:
    """The knowledge graph (Neo4j over Bolt; embedded ArcadeDB by default)."""


@graph.command("serve")
@click.option("--bolt-port", type=int, default=None, help="Bolt port (default 7687, or the port of CIRCUIT_NEO4J_URL).")
@click.option("--http-port", type=int, default=2480, show_default=True, help="ArcadeDB's HTTP port.")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Database folder (default: home/graph).")
@click.option("--heap", default="512m", show_default=True, help="JVM maximum heap.")
def serve(bolt_port: int | None, http_port: int, root: Path | None, heap: str) -> None:
    """Run the embedded ArcadeDB Bolt server in the foreground on 127.0.0.1 (Ctrl-C stops it)."""
    from urllib.parse import urlparse

    from intelligence.graph.embedded import DEFAULT_BOLT_PORT, DEFAULT_DATABASE
    from intelligence.graph.embedded import serve as run_server

    settings = _settings()
    if bolt_port is None:
        bolt_port = (urlparse(settings.neo4j_url).port if settings.neo4j_url else None) or DEFAULT_BOLT_PORT
    root = root or Path(settings.home) / "graph"
    database = getattr(settings, "neo4j_database", None) or DEFAULT_DATABASE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    click.echo(f"graph server: bolt://127.0.0.1:{bolt_port} (database {database}, folder {root})", err=True)
    try:
        run_server(
            root,
            password=settings.neo4j_password,
            bolt_port=bolt_port,
            http_port=http_port,
            database=database,
            heap=heap,
        )
    except CircuitError as exc:
        raise click.ClickException(str(exc)) from None


@graph.command("load")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of the CRM CSV files (default: the bundled data/crm_sales_opportunities).",
)
def load(data_dir: Path | None) -> None:
    """Load (merge) the CRM sales opportunities data; safe to run again."""
    from intelligence.graph.loader import DATA_DIR, load_crm

    client = _client()
    try:
        out = load_crm(client, data_dir or DATA_DIR)
        _echo(out.model_dump())
    except CircuitError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()


@graph.command("related")
@click.argument("company")
@click.option("--limit", type=int, default=10, show_default=True)
def related(company: str, limit: int) -> None:
    """Accounts related to COMPANY, and warm-introduction paths to them."""
    from intelligence.graph.models import RelatedInput
    from intelligence.graph.related import related as find_related

    client = _client()
    try:
        _echo(find_related(client, RelatedInput(company=company, limit=limit)).model_dump())
    except CircuitError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()


@graph.command("query")
@click.argument("name", required=False)
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="A template parameter (repeat).")
@click.option("--list", "list_templates", is_flag=True, help="List the query templates and their parameters.")
def query(name: str | None, params: tuple[str, ...], list_templates: bool) -> None:
    """Run the catalogue query template NAME with --param key=value ..."""
    from intelligence.graph.catalogue import CATALOGUE, get_template

    if list_templates or not name:
        for t in CATALOGUE.values():
            click.echo(f"{t.name}({', '.join(t.params.model_fields)}): {t.description}")
        return
    client = _client()
    try:
        template = get_template(name)
        _echo(client.read(template.cypher, template.bind(_parse_params(params))))
    except CircuitError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
