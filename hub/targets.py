"""Which speakers an announcement goes to.

Named speakers, all speakers of a site, all under a grid path (one group per
site), or the speakers covering a zone (the alarm's by default; a site's
speakers when none covers it).
"""

from __future__ import annotations

from hub.desk import AlarmDesk
from hub.errors import AnnouncementError
from hub.schemas import AnnouncementRequest
from riverguard.config import Config, Device


async def resolve(  # noqa: PLR0912 - one branch per kind of target
    request: AnnouncementRequest, config: Config, desk: AlarmDesk
) -> list[tuple[str, list[Device]]]:
    """Each site the request reaches, with its speakers; refused as ``AnnouncementError``."""
    if request.grid is not None:
        if request.alarm_id or request.site or request.speakers:
            raise AnnouncementError("invalid_target", "a grid is a target of its own")
        grid = request.grid.strip("/")
        under = [s.id for s in config.sites if s.grid == grid or s.grid.startswith(grid + "/")]
        groups = [(site, config.devices_of(site, "speaker")) for site in under]
        groups = [(site, speakers) for site, speakers in groups if speakers]
        if not groups:
            raise AnnouncementError("no_speakers", f"no speakers under grid {grid!r}")
        return groups
    zone = request.zone
    if request.alarm_id is not None:
        alarm = await desk.get(request.alarm_id)
        site = alarm.site
        zone = zone or alarm.zone
        if request.site is not None and request.site != site:
            raise AnnouncementError("invalid_target", "site and alarm_id name different sites")
    elif request.site is not None:
        site = request.site
    elif request.speakers:
        sites = {speaker(config, s).site for s in request.speakers}
        if len(sites) != 1:
            raise AnnouncementError("invalid_target", "speakers of one site only")
        site = sites.pop()
    else:
        raise AnnouncementError("invalid_target", "name an alarm_id, a site, a grid or speakers")
    if site not in config.site_by_id:
        raise AnnouncementError("not_found", f"no site {site!r}", status=404)
    if zone is not None and zone not in config.site(site).zone_ids:
        raise AnnouncementError("not_found", f"no zone {zone!r} at {site!r}", status=404)

    site_speakers = config.devices_of(site, "speaker")
    if request.speakers:
        chosen = [speaker(config, s) for s in dict.fromkeys(request.speakers)]
        if any(s.site != site for s in chosen):
            raise AnnouncementError("invalid_target", f"speakers must belong to {site!r}")
    else:
        covering = [s for s in site_speakers if zone is not None and zone in s.zones]
        chosen = covering or site_speakers
    if not chosen:
        raise AnnouncementError("no_speakers", f"site {site!r} has no speakers")
    return [(site, chosen)]


def speaker(config: Config, speaker_id: str) -> Device:
    device = config.device_by_id.get(speaker_id)
    if device is None or device.type != "speaker":
        raise AnnouncementError("not_found", f"no speaker {speaker_id!r}", status=404)
    return device
