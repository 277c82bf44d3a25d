"""Text to speech with the real espeak-ng: three languages, bounded, cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydub import AudioSegment

from hub.clips import ClipLibrary
from hub.errors import AudioRejected
from hub.tts import BUILTIN_WARNINGS, MAX_TEXT, Speech
from riverguard.wire.times import utcnow
from tests.hub.conftest import RunningHub


def loaded(library: ClipLibrary, clip_id: str) -> AudioSegment:
    info = library.get(clip_id)
    assert info is not None
    with library.processed_path(info).open("rb") as handle:
        return AudioSegment.from_wav(handle)


@pytest.mark.parametrize(
    ("voice", "text", "shortest_ms", "longest_ms"),
    [
        ("cmn", "危险水域，请勿靠近，请立即离开", 2000, 9000),
        ("yue", "危險水域，唔好行近，請即刻離開", 1500, 9000),
        ("en", "Dangerous water. Do not approach. Please leave immediately.", 2000, 9000),
    ],
)
async def test_each_language_speaks_audibly_for_a_plausible_time(
    tmp_path: Path, voice: str, text: str, shortest_ms: int, longest_ms: int
) -> None:
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    speech = Speech(library)

    info = await speech.render(text, voice, created_by="t", now=utcnow())
    audio = loaded(library, info.id)

    assert shortest_ms <= len(audio) <= longest_ms
    assert audio.dBFS > -30
    assert (voice, text) == (info.language, info.text)


async def test_same_text_is_rendered_once(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    speech = Speech(library)
    first = await speech.render("请  注意安全", "zh-CN", created_by="a", now=utcnow())
    processed = library.processed_path(first).stat().st_mtime_ns
    second = await speech.render("请 注意安全", "cmn", created_by="b", now=utcnow())
    assert (first, processed) == (second, library.processed_path(second).stat().st_mtime_ns)


@pytest.mark.parametrize(
    ("text", "voice", "code"),
    [("x" * (MAX_TEXT + 1), "en", "text_too_long"), ("   ", "en", "invalid_request"),
     ("hello", "klingon", "invalid_voice"), ("-v en hello", "en", None)],
)  # fmt: skip
async def test_texts_and_voices_are_bounded(
    tmp_path: Path, text: str, voice: str, code: str | None
) -> None:
    speech = Speech(ClipLibrary(tmp_path / "clips", tmp_path / "audio"))
    if code is None:
        # A text that looks like an option is spoken, not obeyed.
        assert (await speech.render(text, voice, created_by="t", now=utcnow())).duration_ms > 500
        return
    with pytest.raises(AudioRejected) as caught:
        await speech.render(text, voice, created_by="t", now=utcnow())
    assert code == caught.value.code


async def test_builtin_warnings_are_rendered_at_first_start(running_hub: RunningHub) -> None:
    clips = (await running_hub.http.get("/api/clips", headers=await running_hub.auth())).json()
    builtins = {c["id"]: c for c in clips if c["source"] == "builtin"}
    assert {"warning-cmn", "warning-yue", "warning-en"} == set(builtins)
    assert [b.text for b in BUILTIN_WARNINGS] == [
        builtins[f"warning-{v}"]["text"] for v in ("cmn", "yue", "en")
    ]
    assert all(c["duration_ms"] > 1500 for c in builtins.values())


async def test_tts_route_renders_and_reuses(running_hub: RunningHub) -> None:
    headers = await running_hub.auth()
    body = {"text": "请勿在此游泳", "voice": "cmn"}
    first = await running_hub.http.post("/api/tts", headers=headers, json=body)
    second = await running_hub.http.post("/api/tts", headers=headers, json=body)
    bad = await running_hub.http.post(
        "/api/tts", headers=headers, json={"text": "hi", "voice": "fr"}
    )
    assert (201, 201) == (first.status_code, second.status_code)
    assert first.json()["id"] == second.json()["id"]
    assert (422, "invalid_voice") == (bad.status_code, bad.json()["error"])
    await running_hub.wait_metric(
        "riverguard_hub_audio_rejected_total", 1, 'reason="invalid_voice"'
    )
