"""A stand-in Elasticsearch client for the sink's unit tests: answers bulk requests from a script."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError


def api_error(status: int, headers: dict[str, str] | None = None, error_type: str = "error") -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(headers or {}),
        duration=0.0,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )
    body = {"error": {"type": error_type, "reason": f"status {status}"}, "status": status}
    return ApiError(error_type, meta, body)


class FakeIndices:
    def get_alias(self, **_kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(body={})


class FakeClient:
    """``bulk`` answers with the next scripted body (a dict) or raises the next exception."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[list[dict[str, Any]]] = []
        self.indices = FakeIndices()

    def bulk(self, *, operations: bytes | list[dict[str, Any]], **_kwargs: Any) -> SimpleNamespace:
        if isinstance(operations, bytes):  # the sink sends pre-encoded NDJSON
            operations = [json.loads(line) for line in operations.splitlines() if line]
        self.requests.append(list(operations))
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is None:  # default: every item created
            answer = {"errors": False, "items": [{"index": {"status": 201}}] * (len(operations) // 2)}
        return SimpleNamespace(body=answer)

    def close(self) -> None:
        pass
