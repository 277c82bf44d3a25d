"""REST routes of the audio library: clips, speech, renderings per profile, schedules."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from hub.announcer import shape
from hub.api import query_time
from hub.audio_desk import AudioDesk
from hub.clips import MAX_TITLE, MAX_UPLOAD_BYTES, ClipInfo, clean_tags
from hub.clock import Clock
from hub.deps import (
    ActingUser,
    AudioDep,
    ClockDep,
    CurrentUser,
    PictureDep,
    SchedulesDep,
    SettingsDep,
    StoreDep,
    SupervisorUser,
)
from hub.errors import ApiError, AudioRejected
from hub.picture import Picture, audio_url
from hub.profiles import Profile, ProfileName
from hub.schedules import ScheduleIn, SchedulePatch
from hub.schemas import AnnouncementOut, ErrorOut
from hub.store import AuditEntry, Store
from hub.tts import MAX_TEXT
from riverguard.wire.models import IDENT_PATTERN

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 415, 422, 503)
}

router = APIRouter(prefix="/api", responses=_ERRORS)

# Read uploads in pieces, so a too-large file is refused without holding all of it.
_CHUNK = 256 * 1024
# Room for the multipart boundaries and the other fields of an upload form.
_FORM_OVERHEAD = 64 * 1024
_HISTORY = timedelta(hours=24)


class ClipOut(BaseModel):
    id: str
    title: str
    site: str | None
    sha256: str
    format: str
    duration_ms: int
    url: str
    source: str = "site"
    name_zh: str = ""
    name_en: str = ""
    tags: list[str] = []
    language: str | None = None
    text: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    master: dict[str, Any] | None = None


class RenderedOut(BaseModel):
    clip_id: str
    profile: ProfileName
    sha256: str
    format: str
    duration_ms: int
    url: str


class ClipPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    name_zh: str | None = Field(default=None, max_length=MAX_TITLE)
    name_en: str | None = Field(default=None, max_length=MAX_TITLE)
    tags: list[str] | None = Field(default=None, max_length=10)


class SpeechIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    voice: str = Field(min_length=1, max_length=40)


def _clip_out(picture: Picture, base_url: str, info: ClipInfo) -> ClipOut:
    clip = picture.clips.get(info.id)
    return ClipOut(
        id=info.id,
        title=info.title,
        site=info.site,
        sha256=clip.sha256 if clip else info.sha256,
        format=clip.format if clip else "wav",
        duration_ms=clip.duration_ms if clip else info.duration_ms,
        url=audio_url(base_url, clip) if clip else "",
        source=info.source,
        name_zh=info.name_zh,
        name_en=info.name_en,
        tags=list(info.tags),
        language=info.language,
        text=info.text,
        created_at=info.created_at,
        created_by=info.created_by,
        master={
            "sha256": info.master_sha256,
            "format": info.master_format,
            "bytes": info.master_bytes,
        },
    )


async def _audit(
    store: Store,
    clock: Clock,
    username: str,
    action: str,
    target: str,
    *,
    detail: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    entry = AuditEntry(
        ts=clock.now(),
        username=username,
        action=action,
        target=target,
        before=before,
        after=after,
        detail=detail,
    )
    await store.audit.save([entry])


def _info(audio: AudioDesk, clip_id: str) -> ClipInfo:
    info = audio.library.get(clip_id)
    if info is None:
        raise ApiError(404, "not_found", f"no clip {clip_id!r}")
    return info


# --- clips -----------------------------------------------------------------------


@router.get("/clips")
async def list_clips(
    *, audio: AudioDep, picture: PictureDep, settings: SettingsDep, _: CurrentUser
) -> list[ClipOut]:
    """Every clip: the sites' default warnings, the built-in warnings, uploads and speech."""
    listed = {info.id for info in audio.library.all()}
    sites = [
        ClipOut.model_validate(picture.clip_item(clip, settings.base_url))
        for clip in picture.clips.values()
        if clip.id not in listed
    ]
    return sites + [_clip_out(picture, settings.base_url, info) for info in audio.library.all()]


@router.get("/clips/{clip_id}")
async def get_clip(
    *, audio: AudioDep, picture: PictureDep, settings: SettingsDep, _: CurrentUser, clip_id: str
) -> ClipOut:
    clip = picture.clips.get(clip_id)
    if audio.library.get(clip_id) is None and clip is not None:
        return ClipOut.model_validate(picture.clip_item(clip, settings.base_url))
    return _clip_out(picture, settings.base_url, _info(audio, clip_id))


# The largest upload request (hub/security.py refuses larger ones unread).
UPLOAD_BODY_MAX = MAX_UPLOAD_BYTES + _FORM_OVERHEAD
_TOO_LARGE = f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB"
# The form as OpenAPI shows it: the route reads it itself, after the login check.
_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "title"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "WAV, MP3, OGG or M4A, at most 10 MB, 60 s",
                        },
                        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
                        "name_zh": {"type": "string", "maxLength": MAX_TITLE},
                        "name_en": {"type": "string", "maxLength": MAX_TITLE},
                        "tags": {
                            "type": "string",
                            "maxLength": 500,
                            "description": "comma-separated",
                        },
                    },
                }
            }
        },
    }
}


def _field(form: FormData, name: str, *, min_length: int = 0, max_length: int) -> str:
    value = form.get(name, "")
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise ApiError(
            422, "invalid_request", f"{name}: a text of {min_length} to {max_length} characters"
        )
    return value


@router.post(
    "/clips",
    status_code=201,
    openapi_extra=_UPLOAD_FORM,
)
async def upload_clip(
    *,
    audio: AudioDep,
    picture: PictureDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
    user: SupervisorUser,
) -> ClipOut:
    """Upload a clip: checked, trimmed of silence, normalised; the upload is kept as master.

    The login is checked and the declared size refused before the body is read, and
    reading stops at the limit: an anonymous or too large upload is never spooled.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + _FORM_OVERHEAD:
        audio.count_rejected("too_large")
        raise ApiError(413, "too_large", _TOO_LARGE)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send a multipart/form-data form")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=_FORM_OVERHEAD)
    except StarletteHTTPException as exc:
        if exc.status_code == 413:
            audio.count_rejected("too_large")
            raise ApiError(413, "too_large", _TOO_LARGE) from None
        raise ApiError(422, "invalid_request", f"the form: {exc.detail}") from None
    except (MultiPartException, ValueError) as exc:
        raise ApiError(422, "invalid_request", f"the form: {exc}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, StarletteUploadFile):
            raise ApiError(422, "invalid_request", "file: missing (a file part named file)")
        title = _field(form, "title", min_length=1, max_length=MAX_TITLE)
        name_zh = _field(form, "name_zh", max_length=MAX_TITLE)
        name_en = _field(form, "name_en", max_length=MAX_TITLE)
        tags = _field(form, "tags", max_length=500)
        chunks: list[bytes] = []
        size = 0
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                audio.count_rejected("too_large")
                raise ApiError(413, "too_large", _TOO_LARGE)
            chunks.append(chunk)
    finally:
        # The spooled file parts: removed now, not when collected.
        await form.close()
    try:
        info = await audio.add_upload(
            b"".join(chunks),
            title=title,
            created_by=user.username,
            name_zh=name_zh,
            name_en=name_en,
            tags=clean_tags(tags.split(",")),
        )
    except AudioRejected as exc:
        audio.count_rejected(exc.code)
        raise
    out = _clip_out(picture, settings.base_url, info)
    await _audit(
        store, clock, user.username, "clip", info.id, detail="upload", after=out.model_dump()
    )
    return out


@router.patch("/clips/{clip_id}")
async def edit_clip(
    *,
    audio: AudioDep,
    picture: PictureDep,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
    user: SupervisorUser,
    clip_id: str,
    body: ClipPatch,
) -> ClipOut:
    before = _clip_out(picture, settings.base_url, _info(audio, clip_id)).model_dump()
    changes: dict[str, Any] = body.model_dump(exclude_none=True)
    if "tags" in changes:
        changes["tags"] = clean_tags(changes["tags"])
    info = audio.library.update(clip_id, **changes)
    out = _clip_out(picture, settings.base_url, info)
    await _audit(
        store,
        clock,
        user.username,
        "clip",
        clip_id,
        detail="edit",
        before=before,
        after=out.model_dump(),
    )
    return out


@router.get("/clips/{clip_id}/render")
async def render_clip(
    audio: AudioDep,
    settings: SettingsDep,
    *,
    _: CurrentUser,
    clip_id: str,
    profile: ProfileName = "wav",
    chime: bool = False,
    repeat: Annotated[int, Query(ge=1, le=5)] = 1,
    gap_ms: Annotated[int, Query(ge=0, le=10_000)] = 800,
) -> RenderedOut:
    """The clip rendered for a speaker profile (cached by content hash)."""
    info = _info(audio, clip_id)
    wanted = Profile(profile, chime=chime, repeat=repeat, gap_ms=gap_ms)
    # ffmpeg encodes ulaw and mp3 in a subprocess: keep the loop free.
    rendered = await asyncio.to_thread(audio.library.render, info, wanted)
    return RenderedOut(
        clip_id=info.id,
        profile=profile,
        sha256=rendered.sha256,
        format=rendered.format,
        duration_ms=rendered.duration_ms,
        url=f"{settings.base_url.rstrip('/')}/api/audio/{rendered.sha256}.{rendered.format}",
    )


@router.post("/tts", status_code=201)
async def speak(
    *, audio: AudioDep, picture: PictureDep, settings: SettingsDep, user: ActingUser, body: SpeechIn
) -> ClipOut:
    """Render a text with espeak-ng (cmn, yue, en) into a clip; the same text is rendered once."""
    try:
        info = await audio.speak(body.text, body.voice, created_by=user.username)
    except AudioRejected as exc:
        audio.count_rejected(exc.code)
        raise
    return _clip_out(picture, settings.base_url, info)


# --- announcement history ----------------------------------------------------------


@router.get("/announcements", response_model_exclude_unset=True)
async def list_announcements(
    store: StoreDep,
    clock: ClockDep,
    _: CurrentUser,
    *,
    site: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    alarm: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(description="RFC 3339; default: 24 hours ago")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AnnouncementOut]:
    """Announcements with each speaker's states and their history, newest first."""
    start = query_time(since, "since") or clock.now() - _HISTORY
    records = await store.announcements.since(start)
    chosen = [
        r
        for r in reversed(records)
        if (site is None or r.site == site) and (alarm is None or r.alarm_id == alarm)
    ]
    return [AnnouncementOut.model_validate(shape(r)) for r in chosen[:limit]]


# --- schedules -------------------------------------------------------------------


@router.get("/schedules")
async def list_schedules(schedules: SchedulesDep, _: CurrentUser) -> list[dict[str, Any]]:
    return [s.shape() for s in schedules.all()]


@router.post("/schedules", status_code=201)
async def create_schedule(
    *,
    schedules: SchedulesDep,
    store: StoreDep,
    clock: ClockDep,
    user: SupervisorUser,
    body: ScheduleIn,
) -> dict[str, Any]:
    created = (await schedules.create(body, user.username)).shape()
    await _audit(
        store, clock, user.username, "schedule", created["id"], detail="create", after=created
    )
    return created


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedules: SchedulesDep, _: CurrentUser, schedule_id: str) -> dict[str, Any]:
    found = schedules.get(schedule_id)
    if found is None:
        raise ApiError(404, "not_found", f"no schedule {schedule_id!r}")
    return found.shape()


@router.patch("/schedules/{schedule_id}")
async def edit_schedule(
    *,
    schedules: SchedulesDep,
    store: StoreDep,
    clock: ClockDep,
    user: SupervisorUser,
    schedule_id: str,
    body: SchedulePatch,
) -> dict[str, Any]:
    found = schedules.get(schedule_id)
    before = found.shape() if found else None
    changed = (await schedules.update(schedule_id, body, user.username)).shape()
    detail = "pause" if body.paused else "resume" if body.paused is False else "edit"
    await _audit(
        store,
        clock,
        user.username,
        "schedule",
        schedule_id,
        detail=detail,
        before=before,
        after=changed,
    )
    return changed


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(
    *,
    schedules: SchedulesDep,
    store: StoreDep,
    clock: ClockDep,
    user: SupervisorUser,
    schedule_id: str,
) -> None:
    found = schedules.get(schedule_id)
    await schedules.delete(schedule_id, user.username)
    before = found.shape() if found else None
    await _audit(
        store, clock, user.username, "schedule", schedule_id, detail="delete", before=before
    )
