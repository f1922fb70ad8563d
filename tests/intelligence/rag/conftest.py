"""Fixtures for the RAG tests: real Chroma in tmp_path, the real embedder, real SQLite.

Nothing of ours is mocked. Only Anthropic, a third party that cannot run here, is
replaced by a local HTTP stub (tests/stubs/anthropic_stub.py) reached by the real SDK.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from circuits.actions import ActionContext  # noqa: E402
from circuits.settings import Settings  # noqa: E402
from intelligence.rag.collections import Collection, load_collection  # noqa: E402
from intelligence.rag.service import RagService  # noqa: E402
from intelligence.rag.types import Document  # noqa: E402

#: A small business knowledge base; each document is about one thing.
KB = [
    (
        "refunds",
        "Refund policy",
        "Customers can ask for a refund within 30 days of purchase. "
        "Refunds go back to the original card in 5 business days.",
    ),
    (
        "shipping",
        "Shipping times",
        "Standard shipping takes 3 to 5 business days. "
        "Express shipping arrives the next business day if ordered before noon.",
    ),
    (
        "password",
        "Reset your password",
        "To reset a forgotten password, open the login page, "
        "click 'forgot password' and follow the link sent by email.",
    ),
    (
        "invoices",
        "Invoices and billing",
        "Invoices are emailed on the first day of each month. Billing questions go to the finance team.",
    ),
    (
        "sso",
        "Single sign-on",
        "Enterprise plans support single sign-on with SAML and OIDC identity providers such as Okta and Azure AD.",
    ),
    (
        "api-limits",
        "API rate limits",
        "The public API allows 100 requests per minute per key. Error code ERR-429 means the rate limit was exceeded.",
    ),
    (
        "onboarding",
        "Onboarding checklist",
        "New customers get a kickoff call, a data import session and admin training in their first two weeks.",
    ),
    (
        "security",
        "Security practices",
        "Data is encrypted at rest with AES-256 and in transit with TLS 1.3. Access is reviewed every quarter.",
    ),
]


@pytest.fixture(scope="session")
def cranfield() -> Collection:
    return load_collection()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'circuit.db'}",
        anthropic_api_key="sk-test-key",
        anthropic_model="claude-test",
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ActionContext]:
    context = ActionContext.for_test(settings=settings)
    yield context
    context.resources.close()


@pytest.fixture
def service(settings: Settings) -> Iterator[RagService]:
    svc = RagService.from_settings(settings)
    yield svc
    svc.close()


def kb_documents(**overrides: object) -> list[Document]:
    return [Document(id=i, title=t, text=x, **overrides) for i, t, x in KB]  # type: ignore[arg-type]


@pytest.fixture
def kb(service: RagService) -> RagService:
    """The service with the small knowledge base ingested into collection ``helpdesk``."""
    service.ingest("helpdesk", kb_documents())
    return service
