"""A stand-in for a model vendor's HTTP API: the vendor's own client library talks to it through
an in-memory transport (no network), so its request serialisation and response parsing are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx2


class ScriptedVendor:
    """Answers each request with the next scripted JSON body and keeps the requests' bodies."""

    def __init__(self, answers: Iterable[dict[str, Any]]) -> None:
        self._answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        return httpx2.Response(200, json=self._answers.pop(0))

    def http_client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self._handle))


def chat_completion(message: dict[str, Any], finish_reason: str = "tool_calls") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
    }


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "tool_use"
) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
