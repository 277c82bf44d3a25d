"""The hub's FastAPI application; the lifespan builds and owns every resource."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import structlog
from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import api, api_audio, api_devices, api_ops, api_respond, api_responders, ws
from hub.announcer import Announcer
from hub.audio import render_site_warning
from hub.audio_desk import AudioDesk
from hub.auth import Auth, LoginThrottle
from hub.broadcaster import Broadcaster
from hub.clock import Clock, SystemClock
from hub.desk import AlarmDesk
from hub.dispatcher import Dispatcher
from hub.errors import HubError
from hub.influx import Influx
from hub.influx import http_client as influx_http_client
from hub.influx_writer import InfluxWriter
from hub.ingest import Ingest
from hub.link import BrokerLink
from hub.links import Links
from hub.metrics import HubMetrics
from hub.notify.chat import ChatSender
from hub.notify.check import check_channels
from hub.notify.links import ResponderLinks
from hub.notify.outbox import Outbox
from hub.notify.send_process import SendProcess
from hub.picture import Picture
from hub.resources import RESOURCES, HubResources
from hub.responder_layer import stored_laid_over
from hub.responder_tokens import ResponderTokens
from hub.schedules import Schedules
from hub.security import BodyLimit, ConsoleMount, SecurityHeaders, secure_data_dir
from hub.settings import HubSettings
from hub.signed_links import LinkSigner
from hub.store import Store
from riverguard.config import Config
from riverguard.heap import freeze_startup_heap

log = structlog.get_logger()

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _methods_of(app: FastAPI, path: str) -> list[str]:
    """Every method the API documents at ``path`` (what a 405's Allow must name)."""
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    async def hub_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HubError)
        if exc.status is None:
            # Not meant for a client (hub/errors.py): a bug, answered 500 and logged by
            # the server as any other.
            raise exc
        return _error(exc.status, exc.code, exc.detail, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 400:
            # FastAPI's "error parsing the body" (not UTF-8, a broken form): bad input
            # like any other, answered as the API documents it.
            status = 422
        if status == 405:
            # Starlette names the methods of the first route of the path only; a path
            # may have several (GET and POST /api/clips are two routes).
            headers["Allow"] = ", ".join(_methods_of(request.app, request.url.path))
        code = _HTTP_CODES.get(status, f"http_{status}")
        return _error(status, code, str(exc.detail), headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for error in exc.errors()[:5]:
            loc = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{loc}: {error.get('msg', '')}")
        return _error(422, "invalid_request", "; ".join(parts))

    # Our errors say themselves how they are answered; the framework's are translated.
    app.add_exception_handler(HubError, hub_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


async def _essential(
    name: str, work: Coroutine[Any, Any, None], on_task_died: Callable[[str], None] | None
) -> None:
    """A background task the hub cannot do without (ingest, the timers, the writer).

    Should one die of a bug, the hub stops with a failure, for its supervisor to
    start it again, rather than go on serving the console half alive: the server
    is told through ``on_task_died``; without one, the error propagates.
    """
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        if on_task_died is None:
            raise
        log.exception("essential task died; stopping the hub", task=name)
        on_task_died(name)


def create_app(
    settings: HubSettings,
    clock: Clock | None = None,
    *,
    on_task_died: Callable[[str], None] | None = None,
) -> FastAPI:
    """The hub app; ``clock`` drives its timers and timestamps (tests inject a manual one);
    ``on_task_died`` is told the name of an essential task that died (the server stops)."""
    hub_clock: Clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, HubResources]]:
        config = settings.load_config()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.database_url is None:
            secure_data_dir(settings.data_dir)
        store_url = settings.store_url()
        store = await Store.open(store_url.url, store_url.connect_args)
        try:
            # The admin API's responder changes over the file's (docs/responders.md).
            config = stored_laid_over(config, await store.responder_changes.load())
            async with (
                influx_http_client(settings.influx_ca_file) as influx_http,
                SendProcess(config.notify, hub_clock.now) as sender,
            ):
                hub = await _build(settings, config, store, hub_clock, influx_http, sender=sender)
                async with asyncio.TaskGroup() as tasks:
                    running = [
                        tasks.create_task(_essential(name, work, on_task_died), name=name)
                        for name, work in (
                            ("hub.ingest", hub.ingest.run()),
                            ("hub.influx-writer", hub.writer.run()),
                            ("hub.alarm-timer", hub.desk.run()),
                            ("hub.announce-timeouts", hub.announcer.run()),
                            ("hub.schedules", hub.schedules.run()),
                            ("hub.site-risk", hub.desk.watch_risk()),
                            ("hub.store-checkpoints", store.run_checkpoints()),
                            ("hub.links", hub.links.run(hub.influx, store)),
                            ("hub.outbox", hub.outbox.run()),
                            ("hub.dispatch-timer", hub.dispatcher.run()),
                        )
                    ]
                    freeze_startup_heap()
                    log.info("hub started", url=settings.base_url)
                    try:
                        # Starlette hands this state to every request (hub/deps.py).
                        yield {RESOURCES: hub}
                    finally:
                        for task in running:
                            task.cancel()
        finally:
            await store.close()
            log.info("hub stopped")

    app = FastAPI(
        title="Riverguard hub",
        version="1",
        lifespan=lifespan,
        # Served by hub/api.py behind openapi_access.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # Larger bodies are refused with 413 before they are read; uploads have their own.
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        limits={"/api/clips": api_audio.UPLOAD_BODY_MAX},
    )
    app.add_middleware(SecurityHeaders)
    _install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(api_audio.router)
    app.include_router(api_devices.router)
    app.include_router(api_ops.router)
    app.include_router(api_respond.router)
    app.include_router(api_responders.router)
    app.include_router(ws.router)
    # The console is mounted last so that it never shadows an API route.
    if settings.console_dir.is_dir():
        console = StaticFiles(directory=settings.console_dir, html=True)
        app.router.routes.append(ConsoleMount("/", app=console, name="console"))
    else:
        log.warning("console folder missing; not serving it", path=str(settings.console_dir))
    return app


async def _build(
    settings: HubSettings,
    config: Config,
    store: Store,
    clock: Clock,
    influx_http: httpx.AsyncClient,
    *,
    sender: SendProcess,
) -> HubResources:
    """Every collaborator, each built once with what it needs, in the order they need."""
    metrics = HubMetrics()
    metrics.notify_sender_restarts.set_function(lambda: sender.restarts)
    broadcaster = Broadcaster(
        metrics, ring_size=settings.ws_ring_size, queue_size=settings.ws_queue_size
    )
    picture = Picture(config, clock.now)
    picture.load(
        await store.alarms.active(), await store.devices.load(), await store.devices.load_edges()
    )
    links = Links(
        config,
        broadcaster,
        metrics,
        clock,
        silent_after_s=settings.edge_silent_after_s,
        check_interval_s=settings.link_check_interval_s,
    )
    links.load(picture.edges.values())
    # One after another: sites with the same warning text render the same file.
    for site in config.sites:
        picture.add_clip(site.id, await render_site_warning(site, settings.audio_dir))
    audio = AudioDesk(settings, picture, metrics, clock)
    await audio.start()
    influx = _influx(settings, influx_http, metrics)
    # Before the desk: the desk writes each site's risk through it.
    writer = InfluxWriter(
        store,
        influx,
        metrics,
        batch_size=settings.influx_batch_size,
        retry_cap_s=settings.influx_retry_cap_s,
        linger_s=settings.influx_linger_s,
        report=partial(links.report, "influx", "write"),
    )
    tokens = _responder_tokens(settings, config)
    outbox = _outbox(
        config,
        store,
        clock,
        sender,
        (ResponderLinks(settings.base_url), tokens),
        metrics=metrics,
    )

    # The dispatcher climbs alarms through the desk, and the desk wakes the dispatcher
    # and the outbox when an escalation calls people: the desk, built below, is
    # reached through this function. The dispatcher climbs only when nobody of the
    # level is coming.
    async def call_next_level(alarm_id: str, by: str, detail: str) -> object:
        return await desk.call_next_level(alarm_id, by, "dispatch_exhausted", detail)

    dispatcher = Dispatcher(
        store,
        config,
        broadcaster,
        clock,
        call_next_level=call_next_level,
        calls_queued=outbox.wake,
    )

    def calls_queued() -> None:
        outbox.wake()
        dispatcher.wake()

    desk = AlarmDesk(
        store,
        picture,
        broadcaster,
        metrics,
        clock,
        risk_points=writer.add_points,
        calls_queued=calls_queued,
        dispatcher=dispatcher,
    )
    await desk.load()
    await dispatcher.load(alarm.id for alarm in picture.active_alarms())
    auth = _auth(settings, store, clock)
    await auth.sync_users(config, settings.users_file)
    link = BrokerLink()
    announcer = Announcer(
        store=store,
        picture=picture,
        desk=desk,
        broadcaster=broadcaster,
        link=link,
        audio=audio,
        clock=clock,
        base_url=settings.base_url,
        ack_timeout_s=settings.announce_ack_timeout_s,
        quiet_volume_cap=settings.quiet_volume_cap,
        routine_limit=settings.routine_limit,
        routine_window_s=settings.routine_window_s,
    )
    # A schedule fires through the announcer, which speaks through the audio desk: the
    # schedules are their own collaborator, built last, not a part of the audio desk.
    schedules = Schedules(
        settings.data_dir / "schedules.json", config, clock, fire=announcer.fire_schedule
    )
    # A small file, read once.
    await asyncio.to_thread(schedules.load)
    ingest = Ingest(
        settings=settings,
        config=config,
        store=store,
        desk=desk,
        announcer=announcer,
        picture=picture,
        broadcaster=broadcaster,
        writer=writer,
        link=link,
        links=links,
        metrics=metrics,
    )
    return HubResources(
        settings=settings,
        config=config,
        clock=clock,
        store=store,
        metrics=metrics,
        influx=influx,
        writer=writer,
        broadcaster=broadcaster,
        picture=picture,
        desk=desk,
        announcer=announcer,
        auth=auth,
        link=link,
        links=links,
        ingest=ingest,
        audio=audio,
        schedules=schedules,
        outbox=outbox,
        dispatcher=dispatcher,
        tokens=tokens,
    )


def _responder_tokens(settings: HubSettings, config: Config) -> ResponderTokens:
    if settings.responder_key is not None:
        return ResponderTokens(settings.responder_key.get_secret_value().encode())
    if config.responders:
        log.warning("responder_key not set: links in messages die when the hub restarts")
    return ResponderTokens(secrets.token_bytes(32))


def _outbox(
    config: Config,
    store: Store,
    clock: Clock,
    sender: SendProcess,
    links: tuple[ResponderLinks, ResponderTokens],
    *,
    metrics: HubMetrics,
) -> Outbox:
    """The sender of messages to responders; refuses an Apprise URL Apprise cannot use."""
    check_channels(config, ChatSender())
    return Outbox(
        store,
        config,
        sender,
        *links,
        clock=clock,
        metrics=metrics,
    )


def _influx(settings: HubSettings, http: httpx.AsyncClient, metrics: HubMetrics) -> Influx:
    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    login = None
    if settings.influx_username is not None:
        password = settings.influx_password.get_secret_value() if settings.influx_password else ""
        login = (settings.influx_username, password)
    return Influx(
        http, settings.influx_url, settings.influx_database, token, login, metrics=metrics
    )


def _auth(settings: HubSettings, store: Store, clock: Clock) -> Auth:
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )
    throttle = LoginThrottle(
        free=settings.login_user_free_failures,
        max_delay_s=settings.login_user_max_delay_s,
        address_limit=settings.login_address_failures,
        window_s=settings.login_window_s,
    )
    secret = settings.link_secret.get_secret_value().encode() if settings.link_secret else None
    return Auth(
        store,
        settings.token_ttl_s,
        hasher,
        clock.now,
        session_ttl_s=settings.session_ttl_s,
        throttle=throttle,
        hash_concurrency=settings.login_hash_concurrency,
        queue_max=settings.login_queue_max,
        links=LinkSigner(secret, settings.link_ttl_s),
    )
