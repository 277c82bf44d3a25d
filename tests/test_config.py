"""The site configuration loads the example and refuses inconsistent files clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from riverguard.cli import main
from riverguard.config import Config, ConfigError, load_config, site_part

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "danshui.toml"


def test_example_has_two_sites_each_with_two_fences_two_cameras_one_speaker() -> None:
    config = load_config(EXAMPLE)
    assert 2 == len(config.sites)
    for site in config.sites:
        assert 2 == len(config.devices_of(site.id, "fence"))
        assert 2 == len(config.devices_of(site.id, "camera"))
        assert 1 == len(config.devices_of(site.id, "speaker"))
        assert site.grid.startswith("huizhou/huiyang/danshui/")


SITE = """
[[sites]]
id = "s1"
name = "S1"
grid = "city/district"
[[sites.zones]]
id = "z1"
name = "Z1"
"""


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('[[devices]]\nid = "f1"\nsite = "nowhere"\ntype = "fence"\n', "unknown site"),
        ('[[devices]]\nid = "f1"\nsite = "s1"\ntype = "fence"\nzones = ["z9"]\n', "unknown zones"),
        ('[[devices]]\nid = "sp"\nsite = "s1"\ntype = "speaker"\n', "needs a driver"),
        (
            '[[devices]]\nid = "sp"\nsite = "s1"\ntype = "speaker"\ndriver = "http"\n',
            "needs a url",
        ),
        (
            '[[devices]]\nid = "f1"\nsite = "s1"\ntype = "fence"\n'
            '[[devices]]\nid = "f1"\nsite = "s1"\ntype = "camera"\n',
            "duplicate device",
        ),
        ('[[users]]\nusername = "a"\nname = "A"\nrole = "god"\n', "role"),
    ],
)
def test_inconsistent_configuration_is_refused(tmp_path: Path, extra: str, reason: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + extra)
    with pytest.raises(ConfigError, match=reason):
        load_config(path)


def test_unreadable_or_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[sites]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_lookup_of_unknown_site_is_a_config_error() -> None:
    config: Config = load_config(EXAMPLE)
    with pytest.raises(ConfigError, match="no site"):
        config.site("atlantis")


def test_devices_of_gives_a_sites_devices_in_configuration_order_and_none_of_others() -> None:
    config = load_config(EXAMPLE)
    assert ["db-fence-01", "db-fence-02", "db-cam-01", "db-cam-02", "db-spk-01"] == [
        device.id for device in config.devices_of("danshui-bridge")
    ]
    assert ["xy-cam-01", "xy-cam-02"] == [d.id for d in config.devices_of("xiyong-wharf", "camera")]
    assert [] == config.devices_of("no-such-site")


def test_site_config_writes_what_one_edge_needs_and_nothing_of_other_sites(
    tmp_path: Path,
) -> None:
    """``riverguard site-config``: the site and its devices as JSON, loaded as they were."""
    whole = load_config(EXAMPLE)
    out = tmp_path / "danshui-bridge.json"
    argv = ["site-config", "--config", str(EXAMPLE), "--site", "danshui-bridge", "--out", str(out)]
    assert 0 == main(argv)
    part = load_config(out)
    assert site_part(whole, "danshui-bridge") == part
    assert ["danshui-bridge"] == [site.id for site in part.sites]
    assert whole.devices_of("danshui-bridge") == part.devices
    assert [] == part.users
    assert "xiyong" not in out.read_text(encoding="utf-8")


def test_site_config_of_an_unknown_site_or_a_broken_json_is_refused(tmp_path: Path) -> None:
    assert 1 == main(["site-config", "--config", str(EXAMPLE), "--site", "nowhere"])
    broken = tmp_path / "site.json"
    broken.write_text('{"sites": [', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(broken)
    broken.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a table"):
        load_config(broken)
