"""The hub's audio: the clip library, speech, renderings per speaker.

Built by the lifespan. At start it loads the library, renders the built-in
warnings (Mandarin, Cantonese, English) if this is the first start, and
registers every clip with the picture, so announcements can name any of them.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Counter, Histogram

from hub.audio import Clip
from hub.clips import ClipInfo, ClipLibrary
from hub.clock import Clock
from hub.metrics import HubMetrics
from hub.picture import Picture
from hub.profiles import Profile, ProfileName
from hub.settings import HubSettings
from hub.tts import Speech
from riverguard.config import SpeakerDriver

log = structlog.get_logger()

# What each speaker driver is sent: http network speakers take G.711 µ-law 8 kHz
# (unless ``ulaw_for_http_speakers`` is off, for old edges; then the edge converts the WAV).
DRIVER_PROFILES: dict[SpeakerDriver, ProfileName] = {"mqtt": "wav", "local": "wav", "http": "ulaw"}


class AudioDesk:
    def __init__(
        self,
        settings: HubSettings,
        picture: Picture,
        metrics: HubMetrics,
        clock: Clock,
    ) -> None:
        self.picture = picture
        self.ulaw_for_http = settings.ulaw_for_http_speakers
        self.clock = clock
        self.library = ClipLibrary(settings.data_dir / "clips", settings.audio_dir)
        self.speech = Speech(self.library)
        self.rejected = Counter(
            "riverguard_hub_audio_rejected_total",
            "Uploads, texts and renderings refused, by reason",
            ["reason"],
            registry=metrics.registry,
        )
        self.render_seconds = Histogram(
            "riverguard_hub_audio_render_seconds",
            "Time to make a new clip (upload processing or speech)",
            ["source"],
            registry=metrics.registry,
        )

    async def start(self) -> None:
        # Reading the library is file I/O; rendering is ffmpeg/espeak-ng.
        await asyncio.to_thread(self.library.load)
        await self.speech.builtins(self.clock.now())
        for info in self.library.all():
            await self.register(info)

    async def register(self, info: ClipInfo) -> Clip:
        """Make ``info`` announceable (its 16 kHz WAV rendering) and return that clip."""
        known = self.picture.clips.get(info.id)
        if known is not None and known.title == info.title:
            return known
        # Rendering may run ffmpeg: keep the loop free.
        clip = await asyncio.to_thread(self.library.announce_clip, info)
        self.picture.clips[clip.id] = clip
        return clip

    def count_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    async def add_upload(
        self,
        data: bytes,
        *,
        title: str,
        created_by: str,
        name_zh: str,
        name_en: str,
        tags: tuple[str, ...],
    ) -> ClipInfo:
        with self.render_seconds.labels("upload").time():
            # ffprobe and ffmpeg are subprocesses, pydub's processing is CPU-bound.
            info = await asyncio.to_thread(
                self.library.add_upload,
                data,
                title=title,
                created_by=created_by,
                now=self.clock.now(),
                name_zh=name_zh,
                name_en=name_en,
                tags=tags,
            )
        await self.register(info)
        log.info("clip added", clip_id=info.id, username=created_by, duration_ms=info.duration_ms)
        return info

    async def speak(self, text: str, voice: str, *, created_by: str) -> ClipInfo:
        cached = self.speech.cached(text, voice)
        if cached is not None:
            await self.register(cached)
            return cached
        with self.render_seconds.labels("tts").time():
            info = await self.speech.render(
                text, voice, created_by=created_by, now=self.clock.now()
            )
            await self.register(info)
        return info

    async def clip_for(self, clip_id: str, driver: SpeakerDriver | None) -> Clip | None:
        """The clip as a speaker with ``driver`` takes it; None if there is no such clip."""
        base = self.picture.clips.get(clip_id)
        info = self.library.get(clip_id)
        if info is None:
            # A site's composite warning (hub.audio): one WAV; edges convert it for http.
            return base
        profile = DRIVER_PROFILES.get(driver or "mqtt", "wav")
        if profile == "ulaw" and not self.ulaw_for_http:
            profile = "wav"
        if profile == "wav" and base is not None:
            return base
        # Cached after the first time; the first ulaw rendering runs ffmpeg.
        return await asyncio.to_thread(self.library.announce_clip, info, Profile(profile))
