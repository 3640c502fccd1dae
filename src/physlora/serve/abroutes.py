"""HTTP routes of the blind A/B page: the page itself, the next item for a rater, and storing a rating."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from physlora.serve.abstore import AbRatingError
from physlora.serve.abtest import MAX_COMMENT_CHARS, AbService, check_rater
from physlora.serve.batching import QueueClosedError, QueueFullError
from physlora.serve.openai_api import ApiError

router = APIRouter()


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=64)
    choice: str
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


def _service(request: Request) -> AbService:
    service = request.app.state.ab
    if service is None:
        raise ApiError(404, "the A/B page is not enabled on this server; restart it without --no-ab",
                       code="ab_disabled")
    return service


@router.get("/ab", response_class=HTMLResponse)
async def ab_page(request: Request) -> HTMLResponse:
    _service(request)
    page = resources.files("physlora.serve").joinpath("static/ab.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/ab/api/next")
async def next_item(request: Request, rater: str = "") -> dict:
    service = _service(request)
    checked = check_rater(rater)
    if checked is None:
        raise ApiError(400, f"rater id {rater!r} is invalid; use 1 to 64 letters, digits, spaces or _ . @ -",
                       param="rater")
    if not service.items:
        raise ApiError(404, "no test items to rate: the run has neither data/test.jsonl nor predictions.jsonl",
                       code="no_items")
    request.state.log_fields["rater"] = checked
    try:
        return await service.next_item(checked)
    except (QueueFullError, QueueClosedError) as error:
        raise ApiError(503, f"the server is busy ({error}); retry later", code="queue_full",
                       headers={"Retry-After": str(request.app.state.options.retry_after_s)}) from None


@router.post("/ab/api/rate")
async def rate(request: Request, body: RatingRequest) -> dict:
    service = _service(request)
    try:
        row = service.rate(body.token, body.choice, body.comment)
    except AbRatingError as error:
        raise ApiError(400, str(error), param=error.param) from error
    request.state.log_fields.update(rater=row["rater"], item=row["item_id"])
    return {"saved": True, "id": row["id"]}
