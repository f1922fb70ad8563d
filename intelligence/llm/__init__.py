"""LLM clients behind the AI actions (Claude through the official anthropic SDK)."""

from intelligence.llm.client import ClaudeClient, LlmReply

__all__ = ["ClaudeClient", "LlmReply"]
