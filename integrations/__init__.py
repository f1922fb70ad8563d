"""Adapters to the systems circuits reach: notify (Slack, email, webhooks), MCP, ...

They may import :mod:`circuits` but never the workers or Celery, so each action stays a plain
function a test can call without a broker.
"""
