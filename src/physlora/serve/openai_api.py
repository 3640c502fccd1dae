"""Request bodies, response bodies and errors in the shapes of the OpenAI chat and completions APIs.

Requests may carry any other OpenAI parameter (temperature, top_p, user, ...); they are accepted and
ignored, because decoding is always greedy. Integer fields are strict, so "5" or 5.0 is a 400 error.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Strict

from physlora.eval.generation import Generated

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


class ApiError(Exception):
    """An error returned to the client as {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return "invalid_request_error" if self.status < 500 else "server_error"

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class ChatMessage(BaseModel):
    """One chat message; `content` is a string or a list of parts such as {"type": "text", "text": ...}."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage]
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    n: StrictInt = 1
    stream: StrictBool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    prompt: str
    max_tokens: StrictInt | None = None
    n: StrictInt = 1
    stream: StrictBool = False


def validation_message(errors: list[dict]) -> tuple[str, str | None]:
    """Build one readable message, and name the invalid parameter, from FastAPI's request validation errors."""
    first = errors[0]
    if first["type"] == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return f"the request body is not valid JSON ({detail})", None
    location = [str(part) for part in first["loc"] if part != "body"]
    param = ".".join(location) or None
    if first["type"] == "missing" and param is None:
        return "the request body is missing; send a JSON object", None
    where = f"'{param}'" if param else "the request body"
    return f"invalid value for {where}: {first['msg']}", param


def last_user_text(messages: list[ChatMessage]) -> str:
    """Return the text of the last message with role `user`; raise ApiError when there is none."""
    for message in reversed(messages):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            return message.content
        parts = message.content or []
        return "\n".join(part["text"] for part in parts if part.get("type") == "text" and isinstance(part.get("text"), str))
    raise ApiError(400, "'messages' contains no message with role 'user'", param="messages")


def finish_reason(answer: Generated) -> str:
    return "stop" if answer.stopped_at_eos else "length"


def usage(prompt_tokens: int, answer: Generated) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": answer.n_tokens,
        "total_tokens": prompt_tokens + answer.n_tokens,
    }


def chat_response(request_id: str, model: str, answer: Generated, prompt_tokens: int) -> dict:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": finish_reason(answer),
            }
        ],
        "usage": usage(prompt_tokens, answer),
    }


def completion_response(request_id: str, model: str, answer: Generated, prompt_tokens: int) -> dict:
    return {
        "id": f"cmpl-{request_id}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": answer.text, "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": usage(prompt_tokens, answer),
    }


def models_response(names: list[str], created: int) -> dict:
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": created, "owned_by": "physlora"} for name in names],
    }
