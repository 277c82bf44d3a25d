"""The clip library: uploads checked with real ffprobe/ffmpeg, trimmed, normalised, kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydub import AudioSegment

from hub.clips import MAX_UPLOAD_BYTES, TARGET_DBFS, ClipLibrary
from hub.errors import AudioRejected
from riverguard.wire.times import utcnow
from tests.hub.conftest import RunningHub

CODECS = {
    "wav": [],
    "mp3": ["-c:a", "libmp3lame"],
    "ogg": ["-c:a", "libvorbis"],
    "m4a": ["-c:a", "aac"],
}


def tone_file(
    directory: Path, ext: str, seconds: float = 2.0, lead_s: float = 0.0, trail_s: float = 0.0
) -> Path:
    """A 440 Hz stereo tone with silence before and after, encoded by ffmpeg."""
    path = directory / f"tone-{seconds}-{lead_s}-{trail_s}.{ext}"
    total = lead_s + seconds + trail_s
    filters = f"adelay={int(lead_s * 1000)}:all=1,apad=whole_dur={total}"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"sine=frequency=440:duration={seconds}",
            "-af", filters, "-ac", "2", "-ar", "44100", *CODECS[ext], str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


async def upload(
    hub: RunningHub, name: str, data: bytes, user: str = "supervisor-wang", **form: str
) -> tuple[int, dict[str, object]]:
    response = await hub.http.post(
        "/api/clips",
        headers=await hub.auth(user),
        files={"file": (name, data, "application/octet-stream")},
        data={"title": form.pop("title", name), **form},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "m4a"])
async def test_upload_of_each_format_is_kept_trimmed_and_listed(
    running_hub: RunningHub, tmp_path: Path, ext: str
) -> None:
    source = tone_file(tmp_path, ext, seconds=2.0, lead_s=1.0, trail_s=1.0)

    status, clip = await upload(
        running_hub,
        f"tone.{ext}",
        source.read_bytes(),
        title="夜间提示",
        name_zh="夜间提示",
        name_en="Night notice",
        tags="night, routine",
    )
    listed = (await running_hub.http.get("/api/clips", headers=await running_hub.auth())).json()
    audio = await running_hub.http.get(str(clip["url"]))

    assert 201 == status, clip
    assert (ext, source.stat().st_size) == (
        clip["master"]["format"],  # type: ignore[index]
        clip["master"]["bytes"],  # type: ignore[index]
    )
    # Four seconds uploaded, two of them silence: what is kept is the tone (plus short pads).
    assert 1900 <= int(str(clip["duration_ms"])) <= 2400
    assert ("夜间提示", "Night notice", ["night", "routine"], "supervisor-wang") == (
        clip["name_zh"],
        clip["name_en"],
        clip["tags"],
        clip["created_by"],
    )
    assert clip["id"] in {c["id"] for c in listed}
    assert (200, b"RIFF") == (audio.status_code, audio.content[:4])


async def test_same_upload_twice_is_one_clip(running_hub: RunningHub, tmp_path: Path) -> None:
    data = tone_file(tmp_path, "wav").read_bytes()
    first = await upload(running_hub, "a.wav", data)
    second = await upload(running_hub, "b.wav", data)
    assert first[1]["id"] == second[1]["id"]


@pytest.mark.parametrize(
    ("name", "content", "status", "error"),
    [
        (
            "notes.mp3",
            "这不是音频，只是一段文字。\nnot audio at all\n".encode() * 20,
            415,
            "not_audio",
        ),
        ("empty.mp3", b"", 422, "empty"),
        ("huge.wav", b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "too_large"),
    ],
)
async def test_bad_uploads_are_refused_with_a_reason_and_counted(
    running_hub: RunningHub, name: str, content: bytes, status: int, error: str
) -> None:
    got_status, body = await upload(running_hub, name, content)
    assert (status, error) == (got_status, body["error"])
    assert body["detail"]
    await running_hub.wait_metric("riverguard_hub_audio_rejected_total", 1, f'reason="{error}"')


async def test_clip_longer_than_a_minute_is_refused(
    running_hub: RunningHub, tmp_path: Path
) -> None:
    data = tone_file(tmp_path, "mp3", seconds=61.0).read_bytes()
    status, body = await upload(running_hub, "long.mp3", data)
    assert (422, "too_long") == (status, body["error"])
    assert "61" in str(body["detail"])


async def test_video_is_not_audio(running_hub: RunningHub, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64",
         "-f", "lavfi", "-i", "sine=duration=1", "-shortest", str(video)],
        check=True,
    )  # fmt: skip
    status, body = await upload(running_hub, "clip.m4a", video.read_bytes())
    assert (415, "not_audio") == (status, body["error"])


async def test_officers_may_not_upload(running_hub: RunningHub, tmp_path: Path) -> None:
    data = tone_file(tmp_path, "wav").read_bytes()
    status, body = await upload(running_hub, "a.wav", data, user="officer-li")
    assert (403, "forbidden") == (status, body["error"])


async def test_titles_and_tags_are_edited(running_hub: RunningHub, tmp_path: Path) -> None:
    _, clip = await upload(running_hub, "a.wav", tone_file(tmp_path, "wav").read_bytes())
    response = await running_hub.http.patch(
        f"/api/clips/{clip['id']}",
        headers=await running_hub.auth("supervisor-wang"),
        json={"title": "Summer evening", "tags": ["summer"]},
    )
    fetched = await running_hub.http.get(
        f"/api/clips/{clip['id']}", headers=await running_hub.auth("viewer")
    )
    audit = await running_hub.http.get(
        "/api/audit?action=clip", headers=await running_hub.auth("supervisor-wang")
    )
    assert 200 == response.status_code
    assert ("Summer evening", ["summer"]) == (fetched.json()["title"], fetched.json()["tags"])
    assert [("edit", "Summer evening"), ("upload", "a.wav")] == [
        (entry["detail"], entry["after"]["title"]) for entry in audit.json()
    ]


def test_library_trims_silence_and_normalises_loudness(tmp_path: Path) -> None:
    """A quiet tone between seconds of silence comes out short and at the target level."""
    quiet = tmp_path / "quiet.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=1.5",
         "-af", "volume=-30dB,adelay=2000:all=1,apad=pad_dur=2", str(quiet)],
        check=True,
    )  # fmt: skip
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")

    info = library.add_upload(quiet.read_bytes(), title="quiet", created_by="t", now=utcnow())
    with library.processed_path(info).open("rb") as handle:
        kept = AudioSegment.from_wav(handle)

    assert 1500 <= len(kept) <= 1700
    assert TARGET_DBFS == pytest.approx(kept.dBFS, abs=1.0)
    assert kept.max_dBFS <= -0.9
    assert (tmp_path / "clips" / "masters" / f"{info.master_sha256}.wav").read_bytes() == (
        quiet.read_bytes()
    )


def test_silent_upload_is_refused(tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=d=2", str(silence)],
        check=True,
    )  # fmt: skip
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    with pytest.raises(AudioRejected) as caught:
        library.add_upload(silence.read_bytes(), title="s", created_by="t", now=utcnow())
    assert "silent" == caught.value.code


def test_library_is_read_back_after_a_restart(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    info = library.add_upload(
        tone_file(tmp_path, "ogg").read_bytes(), title="t", created_by="u", now=utcnow()
    )
    again = ClipLibrary(tmp_path / "clips", tmp_path / "audio")
    again.load()
    assert info == again.get(info.id)
