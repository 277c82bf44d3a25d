"""Routes for operations: health, Prometheus metrics, the OpenAPI document and its page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.auth import Auth
from hub.deps import (
    AuthDep,
    BrokerLinkDep,
    InfluxDep,
    MetricsDep,
    SettingsDep,
    StoreDep,
    bearer_token,
)
from hub.errors import ApiError
from hub.schemas import ErrorOut, HealthOut
from hub.security import DOCS_CSP

router = APIRouter()


@router.get("/healthz", responses={503: {"model": HealthOut}})
async def healthz(link: BrokerLinkDep, influx: InfluxDep, store: StoreDep) -> JSONResponse:
    broker_ok = link.connected
    influx_ok = await influx.ping()
    store_ok = await store.ping()
    ok = broker_ok and influx_ok and store_ok
    body = HealthOut(
        status="ok" if ok else "degraded", broker=broker_ok, influx=influx_ok, store=store_ok
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


async def _gate(auth: Auth, bearer: str | None, access: str, what: str) -> None:
    """``metrics_access`` / ``openapi_access``: open, a logged-in user, or nobody (404)."""
    if access == "off":
        raise ApiError(404, "not_found", f"{what} is turned off on this hub")
    if access == "login" and await auth.session_for(bearer) is None:
        raise ApiError(401, "unauthorized", f"{what} needs a bearer token on this hub")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {"model": ErrorOut},
        404: {"model": ErrorOut},
    },
)
async def metrics(
    auth: AuthDep,
    settings: SettingsDep,
    hub_metrics: MetricsDep,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> Response:
    """Prometheus metrics; who may read them is ``RIVERGUARD_METRICS_ACCESS``."""
    await _gate(auth, bearer, settings.metrics_access, "/metrics")
    return Response(generate_latest(hub_metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/openapi.json", include_in_schema=False)
async def openapi(
    auth: AuthDep,
    settings: SettingsDep,
    request: Request,
    bearer: Annotated[str | None, Depends(bearer_token)],
) -> JSONResponse:
    await _gate(auth, bearer, settings.openapi_access, "the OpenAPI document")
    return JSONResponse(request.app.openapi())


@router.get("/api/docs", include_in_schema=False)
async def docs(settings: SettingsDep) -> HTMLResponse:
    if settings.openapi_access != "open":
        raise ApiError(404, "not_found", "the API page needs openapi_access open on this hub")
    page = get_swagger_ui_html(openapi_url="/api/openapi.json", title="Riverguard hub")
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
