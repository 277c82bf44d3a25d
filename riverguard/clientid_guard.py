"""The client id guard: our Mosquitto plugin binding client ids to logins.

Mosquitto 2.0 lets a new connection take over the session of any client id,
whoever logged in: the dynamic security plugin can require a login to use one
client id, but not stop another login from using it. ``clientid_guard.c``
refuses a connection whose client id is bound to another login, so that the
``sim`` login cannot take over ``riverguard-hub`` (docs/security.md). It is
compiled once per machine (a C compiler and the ``mosquitto-dev`` headers),
into the user's cache, named by its source's hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from riverguard.errors import RiverguardError

SOURCE = Path(__file__).with_name("clientid_guard.c")
HEADER = Path("/usr/include/mosquitto_plugin.h")


class GuardBuildError(RiverguardError):
    """The plugin cannot be built: the broker must not run without it."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "riverguard"


def plugin_path() -> Path:
    """The compiled plugin, built first if this source has not been yet."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = _cache_dir() / f"clientid_guard-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise GuardBuildError("no C compiler (cc) to build the client id guard; run scripts/setup")
    if not HEADER.exists():
        raise GuardBuildError(f"{HEADER} missing (Debian package mosquitto-dev); run scripts/setup")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed: concurrent builds never see half a file.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        result = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(built), str(SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise GuardBuildError(f"building the client id guard failed:\n{result.stderr[-2000:]}")
        os.replace(built, target)
    return target
