"""notify.slack and notify.webhook against a real HTTP receiver on 127.0.0.1, and one circuit
through a real worker (notify.email is in test_notify_email.py).

The receiver is a ThreadingHTTPServer that records requests and answers from a script. The
actions run as the engine runs them, through ``ActionSpec.run``; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import PermanentError, RetryableError, SettingMissingError
from circuits.settings import DEFAULT_ACTION_MODULES, Settings
from integrations.notify import idempotency_key, verify_signature
from integrations.notify.config import mask_url, scrub
from integrations.notify.http import parse_retry_after
from tests.stubs.http_receiver import HttpReceiver

REGISTRY = ActionRegistry.from_modules(["integrations.notify"])
SLACK_PATH = "/services/T000SECRET/B000SECRET/xoxSlackTokenPath"
HMAC_SECRET = "hmac-secret-do-not-print-4f1c"


def run(action: str, settings: Settings, inputs: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    return REGISTRY.get(action).run(ActionContext.for_test(settings=settings, **ctx), inputs)


@pytest.fixture()
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def slack_settings(rx: HttpReceiver, **kw: Any) -> Settings:
    return Settings(slack_webhooks={"sales": f"{rx.url}{SLACK_PATH}"}, notify_timeout_s=5, **kw)


def hook_settings(rx: HttpReceiver, **kw: Any) -> Settings:
    return Settings(webhook_targets={"crm": {"url": f"{rx.url}/in/crm?token=qs-secret", "secret": HMAC_SECRET}}, **kw)


# --- registration and contract ---------------------------------------------------------------


def test_the_three_actions_are_registered_on_the_notify_queue() -> None:
    assert "integrations.notify" in DEFAULT_ACTION_MODULES
    specs = {s.name: s for s in REGISTRY}
    assert set(specs) == {"notify.slack", "notify.email", "notify.webhook"}
    assert {s.queue for s in specs.values()} == {"notify"}
    assert all(s.retries == 3 and s.timeout_s and s.side_effects for s in specs.values())


def test_notify_imports_neither_workers_nor_celery() -> None:
    from tests.test_layers import imports

    root = Path(__file__).resolve().parents[2] / "integrations"
    found = {name for path in root.glob("notify/*.py") for name in imports(path)}
    assert not {n for n in found if n.split(".")[0] in ("workers", "celery")}


def test_retryable_error_keeps_retry_after_when_rebuilt_from_args() -> None:
    exc = RetryableError("busy", retry_after_s=7.0)
    again = type(exc)(*exc.args)  # what Celery does when an exception crosses the result backend
    assert (str(again), again.retry_after_s) == ("busy", 7.0)
    assert str(RetryableError("plain")) == "plain" and RetryableError("plain").retry_after_s is None


# --- Slack -----------------------------------------------------------------------------------


def test_slack_posts_text_blocks_and_channel_to_the_named_webhook(rx: HttpReceiver) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Hot lead* ann@example.com"}}]
    out = run(
        "notify.slack",
        slack_settings(rx),
        {"text": "Hot lead", "blocks": blocks, "channel": "#sales", "webhook": "sales"},
    )
    assert out == {"status": 200, "target": "sales"}
    [req] = rx.requests
    assert req.path == SLACK_PATH and req.headers["Content-Type"] == "application/json"
    assert json.loads(req.body) == {"text": "Hot lead", "blocks": blocks, "channel": "#sales"}


def test_slack_without_a_name_uses_the_default_webhook(rx: HttpReceiver) -> None:
    settings = Settings(slack_webhook_url=f"{rx.url}/default/hook")
    assert run("notify.slack", settings, {"text": "hi"}) == {"status": 200, "target": "default"}
    assert json.loads(rx.requests[0].body) == {"text": "hi"}


def test_slack_names_a_missing_webhook_and_never_takes_a_url_from_the_circuit(rx: HttpReceiver) -> None:
    with pytest.raises(SettingMissingError, match="no webhook named 'ops'.*known: sales") as err:
        run("notify.slack", slack_settings(rx), {"text": "hi", "webhook": "ops"})
    assert isinstance(err.value, PermanentError)
    with pytest.raises(SettingMissingError, match="CIRCUIT_SLACK_WEBHOOK_URL"):
        run("notify.slack", Settings(), {"text": "hi"})
    with pytest.raises(ValidationError):
        run("notify.slack", slack_settings(rx), {"text": "hi", "webhook": "https://hooks.slack.com/services/x"})
    with pytest.raises(ValidationError, match="block 0 has no 'type'"):
        run("notify.slack", slack_settings(rx), {"text": "hi", "blocks": [{"text": "no type"}]})
    assert rx.requests == []


# --- webhook ---------------------------------------------------------------------------------


def test_webhook_body_is_signed_and_verifiable(rx: HttpReceiver) -> None:
    payload = {"lead": "ann@example.com", "score": 91, "tags": ["hot", "é"]}
    out = run("notify.webhook", hook_settings(rx), {"target": "crm", "payload": payload}, run_id="r-1", step_id="post")
    assert out == {"status": 200, "target": "crm", "idempotency_key": idempotency_key("r-1", "post")}
    [req] = rx.requests
    assert json.loads(req.body) == payload
    stamp, sig = req.headers["X-Circuit-Timestamp"], req.headers["X-Circuit-Signature"]
    assert sig.startswith("sha256=") and abs(int(stamp) - time.time()) < 5
    assert verify_signature(HMAC_SECRET, stamp, req.body, sig)
    assert not verify_signature(HMAC_SECRET, stamp, req.body + b" ", sig)  # body changed
    assert not verify_signature("another-secret", stamp, req.body, sig)  # wrong secret
    assert not verify_signature(HMAC_SECRET, int(stamp) + 1, req.body, sig)  # timestamp changed
    assert not verify_signature(HMAC_SECRET, stamp, req.body, sig, now=int(stamp) + 301)  # replayed late
    assert verify_signature(HMAC_SECRET, stamp, req.body, sig, tolerance_s=600, now=int(stamp) + 301)
    assert not verify_signature(HMAC_SECRET, "not-a-time", req.body, sig)
    assert not verify_signature(HMAC_SECRET, stamp, req.body, sig.removeprefix("sha256="))


def test_idempotency_key_is_stable_across_attempts_and_differs_across_steps(rx: HttpReceiver) -> None:
    settings = hook_settings(rx)
    for ctx in ({"step_id": "post", "attempt": 1}, {"step_id": "post", "attempt": 2}, {"step_id": "other"}):
        run("notify.webhook", settings, {"target": "crm", "payload": {"n": 1}}, run_id="r-7", **ctx)
    run("notify.webhook", settings, {"target": "crm", "payload": {"n": 1}}, run_id="r-8", step_id="post")
    first, second, other_step, other_run = (r.headers["Idempotency-Key"] for r in rx.requests)
    assert first == second
    assert len({first, other_step, other_run}) == 3


def test_webhook_target_must_be_configured_with_url_and_secret(rx: HttpReceiver) -> None:
    with pytest.raises(SettingMissingError, match="no target named 'erp'"):
        run("notify.webhook", hook_settings(rx), {"target": "erp"})
    settings = Settings(webhook_targets={"crm": {"url": f"{rx.url}/x"}})
    with pytest.raises(SettingMissingError, match="target 'crm' in CIRCUIT_WEBHOOK_TARGETS has no secret"):
        run("notify.webhook", settings, {"target": "crm"})
    assert rx.requests == []


# --- HTTP failure kinds (shared by Slack and webhooks) ---------------------------------------


def call_slack(rx: HttpReceiver) -> dict[str, Any]:
    return run("notify.slack", slack_settings(rx), {"text": "hi", "webhook": "sales"})


def call_webhook(rx: HttpReceiver) -> dict[str, Any]:
    return run("notify.webhook", hook_settings(rx), {"target": "crm", "payload": {"a": 1}})


CHANNELS = pytest.mark.parametrize("call", [call_slack, call_webhook], ids=["slack", "webhook"])


@CHANNELS
def test_429_is_retryable_and_carries_retry_after(rx: HttpReceiver, call: Callable[[HttpReceiver], Any]) -> None:
    rx.answer(429, "slow down", {"Retry-After": "7"})
    with pytest.raises(RetryableError, match="answered 429; retry after 7s: slow down") as err:
        call(rx)
    assert err.value.retry_after_s == 7.0


@CHANNELS
def test_5xx_is_retryable(rx: HttpReceiver, call: Callable[[HttpReceiver], Any]) -> None:
    rx.answer(500, "boom")
    with pytest.raises(RetryableError, match="answered 500: boom") as err:
        call(rx)
    assert err.value.retry_after_s is None
    rx.answer(503, "", {"Retry-After": "2"})
    with pytest.raises(RetryableError) as err:
        call(rx)
    assert err.value.retry_after_s == 2.0


@CHANNELS
def test_other_4xx_is_permanent_with_status_and_excerpt(rx: HttpReceiver, call: Callable[[HttpReceiver], Any]) -> None:
    rx.answer(400, "invalid_blocks\n" + "x" * 1000)
    with pytest.raises(PermanentError, match="answered 400: invalid_blocks x") as err:
        call(rx)
    assert len(str(err.value)) < 400
    rx.answer(404, "no_service")
    with pytest.raises(PermanentError, match="answered 404: no_service"):
        call(rx)


def test_retry_after_as_an_http_date() -> None:
    now = time.time()
    when = dt.datetime.fromtimestamp(now + 30, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(when, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("inf") is None


def test_no_connection_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(webhook_targets={"crm": {"url": f"http://127.0.0.1:{port}/x", "secret": HMAC_SECRET}})
    with pytest.raises(RetryableError, match=r"could not be reached: ConnectError"):
        run("notify.webhook", settings, {"target": "crm"})


def test_a_server_that_never_answers_times_out_as_retryable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        settings = Settings(webhook_targets={"crm": {"url": url, "secret": HMAC_SECRET}}, notify_timeout_s=0.3)
        with pytest.raises(RetryableError, match="did not answer in time"):
            run("notify.webhook", settings, {"target": "crm"})


# --- secrets stay secret ---------------------------------------------------------------------


def test_mask_url_shows_scheme_and_host_only() -> None:
    assert mask_url("https://user:pw@hooks.slack.com/services/T/B/X?k=v") == "https://hooks.slack.com/…"
    assert mask_url("http://127.0.0.1:8080/path") == "http://127.0.0.1:8080/…"
    assert mask_url("not a url") == "<invalid url>"
    assert scrub(f"echo {SLACK_PATH} and https://h{SLACK_PATH}", [f"https://h{SLACK_PATH}"]) == "echo *** and ***"


@pytest.mark.parametrize("status", [200, 400, 429, 500])
def test_secrets_never_reach_errors_logs_or_outputs(
    rx: HttpReceiver, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [SLACK_PATH, "T000SECRET", HMAC_SECRET, "qs-secret"]
    # a hostile or careless server echoes what it was sent, URL and all, in its error body
    echo = f"bad request to {rx.url}{SLACK_PATH} and /in/crm?token=qs-secret with {HMAC_SECRET}"
    settings = Settings(
        slack_webhooks={"sales": f"{rx.url}{SLACK_PATH}"},
        webhook_targets={"crm": {"url": f"{rx.url}/in/crm?token=qs-secret", "secret": HMAC_SECRET}},
    )
    seen: list[str] = [repr(settings), str(settings)]
    for action, inputs in (("notify.slack", {"text": "hi", "webhook": "sales"}), ("notify.webhook", {"target": "crm"})):
        rx.answer(status, echo, {"Retry-After": "1"})
        try:
            seen.append(json.dumps(run(action, settings, inputs)))
        except (PermanentError, RetryableError) as exc:
            seen += [str(exc), repr(exc), repr(exc.args)]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("httpx" == r.name for r in caplog.records), "httpx's request log line was not captured"
    leaks = [(s, text) for text in seen for s in secrets if s in text]
    assert leaks == []
    assert f"{rx.url}/…" in caplog.text


# --- end to end through a real worker --------------------------------------------------------


def test_a_circuit_posts_a_signed_webhook_through_the_worker(webhook_receiver: HttpReceiver, run_of: Any) -> None:
    from tests.conftest import WEBHOOK_SECRET, new_id
    from workers.publish import publish

    webhook_receiver.reset()
    webhook_receiver.answer(503, "warming up", {"Retry-After": "0"})  # the first attempt fails, the retry lands
    event = publish("test.notify", {"lead": "ann@example.com", "score": 91}, id=new_id())
    run = run_of(event.id, "t-notify")
    assert run["status"] == "succeeded", run["error"]
    [step] = run["steps"]
    assert step["attempts"] == 2
    key = idempotency_key(run["id"], "post")
    assert step["output"] == {"status": 200, "target": "e2e", "idempotency_key": key}
    first, second = webhook_receiver.wait_for(2)
    assert first.path == second.path == "/hooks/e2e"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == key
    assert json.loads(second.body) == {"lead": "ann@example.com", "score": 91}
    stamp, sig = second.headers["X-Circuit-Timestamp"], second.headers["X-Circuit-Signature"]
    assert verify_signature(WEBHOOK_SECRET, stamp, second.body, sig)
    assert WEBHOOK_SECRET not in json.dumps(run, default=str)
