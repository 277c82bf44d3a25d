"""The ``riverguard`` command line.

``up`` runs the whole stack; ``hub``, ``edge`` and ``sim`` run one component
each (``up`` starts them as child processes through these same commands).
Components are imported inside their command, so the shared package does not
depend on them at import time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from riverguard.log import configure_logging

STACK_HELP = (
    "the running stack: the stack.json `riverguard up` writes in its data directory, or "
    "that directory (default: the one stack running here, in .riverguard/ or DIR/ of "
    "`up --data-dir DIR`)"
)
# Settings that cannot be used (sysexits EX_CONFIG): the systemd units do not restart on it.
EXIT_CONFIG = 78


def _refuse(component: str, error: ValidationError) -> int:
    """One readable line per wrong setting on stderr (the journal), then EX_CONFIG."""
    print(
        f"riverguard {component}: refusing to start, the settings cannot be used:", file=sys.stderr
    )
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        print(f"  {where}: {problem['msg']}", file=sys.stderr)
    return EXIT_CONFIG


def _hub(args: argparse.Namespace) -> int:
    from hub.main import serve
    from hub.settings import HubSettings

    try:
        settings = HubSettings()
    except ValidationError as exc:
        return _refuse("hub", exc)
    configure_logging("hub", settings.log_level, settings.log_json)
    return serve(settings)


def _edge(args: argparse.Namespace) -> int:
    from edge.errors import SitesRefused
    from edge.main import serve
    from edge.settings import EdgeSettings, settings_for_sites

    sites: list[str] = args.site
    what = f"edge --site {' --site '.join(sites)}"
    try:
        if args.logins is not None:
            settings = settings_for_sites(sites, args.logins)
        elif len(sites) == 1:
            settings = [EdgeSettings(site=sites[0])]
        else:
            print(f"riverguard {what}: several sites need --logins FILE", file=sys.stderr)
            return EXIT_CONFIG
    except ValidationError as exc:
        return _refuse(what, exc)
    except SitesRefused as exc:
        print(f"riverguard {what}: refusing to start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    name = sites[0] if len(sites) == 1 else f"{sites[0]}..{sites[-1]}"
    configure_logging(f"edge[{name}]", settings[0].log_level, settings[0].log_json)
    serve(settings)
    return 0


def _sim(args: argparse.Namespace) -> int:
    from simulators.errors import SimulatorError
    from simulators.main import speakers, swimmer
    from simulators.settings import SimSettings

    settings = SimSettings()
    configure_logging(f"sim.{args.what}", settings.log_level, settings.log_json)
    try:
        if args.what == "speakers":
            speakers(settings, site=args.site)
        else:
            swimmer(
                settings,
                site=args.site,
                zone=args.zone,
                loop=args.loop,
                wait_for_console=args.wait_for_console,
            )
    except SimulatorError as exc:
        print(f"riverguard sim {args.what}: {exc}", file=sys.stderr)
        return 2
    return 0


def _sim_fleet(args: argparse.Namespace) -> int:
    from simulators.commands import fleet
    from simulators.fleet import FleetOptions

    configure_logging("sim.fleet", "WARNING", json=False)
    options = FleetOptions(
        heartbeat_s=args.heartbeat,
        wave=args.wave,
        noise_scale=args.noise,
        duration_s=args.duration,
        speaker_speed=args.speaker_speed,
        metrics_port=args.metrics_port,
    )
    return fleet(
        args.stack,
        args.config,
        sites=args.sites,
        devices_per_site=args.devices_per_site,
        options=options,
        json_out=args.json,
    )


def _sim_fleet_config(args: argparse.Namespace) -> int:
    from simulators.commands import write_fleet_config

    return write_fleet_config(args.sites, args.devices_per_site, args.output)


def _sim_run(args: argparse.Namespace) -> int:
    from simulators.commands import run_scenario

    configure_logging("sim.run", "WARNING", json=False)
    return run_scenario(args.scenario, args.stack, speed=args.speed, json_out=args.json)


def _up(args: argparse.Namespace) -> int:
    from riverguard.stack import up

    return up(
        data_dir=args.data_dir,
        config=args.config,
        simulate=not args.no_sim,
        edge_processes=args.edge_processes,
        webhook=args.webhook,
    )


def _devices(args: argparse.Namespace) -> int:
    from riverguard.devices import run
    from riverguard.settings import DEFAULT_CONFIG

    configure_logging("devices", "WARNING", json=False)
    config = args.config or DEFAULT_CONFIG
    deployment = None
    if args.broker_logins is not None:
        from riverguard.devices import Deployment

        deployment = Deployment(args.broker_logins, args.broker, args.ca_file, args.cert, args.key)
    return run(args.action, args.device, args.data_dir, config, args.offline, deployment=deployment)


def _bench(args: argparse.Namespace) -> int:
    from simulators.benchmark import bench

    configure_logging("bench", "WARNING", json=False)
    return bench(
        rate=args.rate,
        duration=args.duration,
        devices=args.devices,
        sites=args.sites,
        find_max=args.find_max,
        compare=args.compare,
        json_out=args.json,
        profile_dir=args.profile,
        tls=args.tls,
    )


def _certs(args: argparse.Namespace) -> int:
    from riverguard import certs
    from riverguard.config import load_config
    from riverguard.errors import RiverguardError

    sites: list[tuple[str, list[str]]] = []
    for value in args.site:
        site, _, hosts = value.partition("=")
        sites.append((site, [host for host in hosts.split(",") if host]))
    devices: list[tuple[str, str]] = []
    if args.devices and args.config is None:
        print("riverguard certs: --devices needs --config", file=sys.stderr)
        return 2
    try:
        if args.config is not None:
            config = load_config(args.config)
            if not sites:
                # No --site: every site of the configuration (an edge certificate each).
                sites = [(site.id, []) for site in config.sites]
            chosen = {site for site, _ in sites}
            if args.devices:
                devices = [(d.site, d.id) for d in config.devices if d.site in chosen]
        requests = certs.plan(
            args.hub, sites, broker_hosts=args.broker, devices=devices, clients=args.client
        )
        outcomes = certs.make_all(
            args.dir,
            requests,
            days=args.days,
            ca_days=args.ca_days,
            key_type=args.key_type,
            new_ca=args.new_ca,
        )
    except RiverguardError as exc:  # a certificate or a configuration that cannot be used
        print(f"riverguard certs: {exc}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        print(
            f"{outcome.action:8} {outcome.cert_path}  until {outcome.not_after:%Y-%m-%d}"
            f"  {outcome.what} ({outcome.reason})"
        )
    return 0


def _broker_logins(args: argparse.Namespace) -> int:
    from riverguard import broker_logins
    from riverguard.errors import RiverguardError

    try:
        written = broker_logins.write(args.config, args.dir, devices=args.devices)
    except RiverguardError as exc:
        print(f"riverguard broker-logins: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written.made)} logins made, {len(written.kept)} kept, in {written.directory}:")
    for name in written.made:
        print(f"  made {name}")
    print(
        f"passwords in {written.directory / broker_logins.LOGINS}; the broker reads "
        f"{broker_logins.DYNSEC} and {broker_logins.BOUND_IDS} (docs/deploy.md)"
    )
    return 0


def _site_config(args: argparse.Namespace) -> int:
    from riverguard.config import ConfigError, load_config, site_part

    try:
        part = site_part(load_config(args.config), args.site)
    except ConfigError as exc:
        print(f"riverguard site-config: {exc}", file=sys.stderr)
        return 1
    text = part.model_dump_json(indent=2, exclude_defaults=True) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


def _add_site_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    part = commands.add_parser(
        "site-config",
        help="write the part of the configuration one site's edge needs (JSON)",
        description="The site and its devices, nothing of other sites and no user: what an "
        "edge box gets as its RIVERGUARD_CONFIG (a name ending in .json is read as JSON).",
    )
    part.add_argument("--config", type=Path, required=True, help="the whole configuration")
    part.add_argument("--site", required=True, help="site id")
    part.add_argument("--out", type=Path, help="file to write (default: standard output)")
    part.set_defaults(handler=_site_config)


def _add_broker_logins(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logins = commands.add_parser(
        "broker-logins",
        help="write a deployment's broker logins and access lists (safe to run again)",
        description="Write logins.json (passwords, kept across runs), dynamic-security.json "
        "(the dynamic security plugin's logins and access lists) and bound-client-ids (the "
        "client id guard's) for every hub, edge, NVR and tool login of the configuration.",
    )
    logins.add_argument("--config", type=Path, required=True, help="site configuration TOML")
    logins.add_argument("--dir", type=Path, required=True, help="where the three files go")
    logins.add_argument("--devices", action="store_true", help="a login for every device too")
    logins.set_defaults(handler=_broker_logins)


def _add_certs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = commands.add_parser(
        "certs",
        help="make the private CA and the certificates of a deployment (safe to run again)",
        description="Make (or keep, while still good) a private CA and the server and client "
        "certificates of a deployment in DIR: hub-https and broker-central for the hub's "
        "names, hub-mqtt, per site edge-SITE and, with names, broker-SITE; optionally "
        "device-SITE-DEVICE per device. Keys are written 0600.",
    )
    certs.add_argument("--dir", type=Path, required=True, help="where the PEM files go")
    certs.add_argument(
        "--hub",
        action="append",
        default=[],
        metavar="HOST",
        help="a DNS name or IP address of the hub machine (repeat for several)",
    )
    certs.add_argument(
        "--broker",
        action="append",
        default=[],
        metavar="HOST",
        help="the central broker's names when not the hub's (repeat)",
    )
    certs.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="SITE[=HOST,...]",
        help="a site: an edge client certificate, and a site broker one for the HOSTs "
        "(default with --config: every site of it, without a site broker)",
    )
    certs.add_argument(
        "--devices",
        action="store_true",
        help="a client certificate per device of the sites, from --config",
    )
    certs.add_argument("--config", type=Path, default=None, help="site configuration TOML")
    certs.add_argument(
        "--client", action="append", default=[], metavar="NAME", help="another client certificate"
    )
    certs.add_argument("--days", type=int, default=825, help="validity of new certificates")
    certs.add_argument("--ca-days", type=int, default=3650, help="validity of a new CA")
    certs.add_argument("--key-type", choices=["ec", "rsa"], default="ec", help="P-256 or RSA-3072")
    certs.add_argument(
        "--new-ca",
        action="store_true",
        help="replace an existing CA (every certificate it signed is then issued again)",
    )
    certs.set_defaults(handler=_certs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riverguard",
        description="Riverguard: the whole stack (up), one component (hub, edge, sim), "
        "the benchmark and the tools of a deployment. `riverguard COMMAND --help` for each.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole stack with simulators")
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".riverguard"),
        help="where the stack keeps its data, logs and stack.json (default: .riverguard)",
    )
    up.add_argument("--config", type=Path, default=None, help="site configuration TOML")
    up.add_argument("--no-sim", action="store_true", help="do not start the simulators")
    up.add_argument(
        "--edge-processes",
        type=int,
        default=None,
        metavar="N",
        help="run the sites' edge agents in N processes (default: one per core, at least "
        "two, at most one per site); each site keeps its own broker login and data",
    )
    up.add_argument(
        "--webhook",
        default=None,
        metavar="URL",
        help="call a demo responder at every level of every site's grid path, each "
        "through this signed webhook (docs/responders.md)",
    )
    up.set_defaults(handler=_up)

    devices = commands.add_parser(
        "devices", help="list, add, rotate or revoke the broker logins of a stack's devices"
    )
    devices.add_argument(
        "action", choices=["list", "add", "rotate", "revoke"], help="what to do (list: all)"
    )
    devices.add_argument("device", nargs="?", default=None, help="a configured device id")
    devices.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".riverguard"),
        help="the data directory of the stack (`riverguard up --data-dir`; default: .riverguard)",
    )
    devices.add_argument("--config", type=Path, default=None, help="site configuration TOML")
    devices.add_argument(
        "--offline", action="store_true", help="the stack is stopped: record for its next start"
    )
    devices.add_argument(
        "--broker-logins",
        type=Path,
        default=None,
        metavar="DIR",
        help="a deployment: the folder of `riverguard broker-logins` (instead of --data-dir)",
    )
    devices.add_argument(
        "--broker",
        default=None,
        metavar="HOST:PORT",
        help="the deployment's broker the devices connect to (with --broker-logins)",
    )
    devices.add_argument("--ca-file", type=Path, default=None, help="TLS: the broker's CA")
    devices.add_argument(
        "--cert", type=Path, default=None, help="TLS: a client certificate (`riverguard certs`)"
    )
    devices.add_argument("--key", type=Path, default=None, help="TLS: its key")
    devices.set_defaults(handler=_devices)

    hub = commands.add_parser("hub", help="run the hub (settings from RIVERGUARD_*)")
    hub.set_defaults(handler=_hub)

    _add_edge(commands)

    _add_sim(commands)

    bench = commands.add_parser(
        "bench", help="measure device->console throughput and latency on a stack of its own"
    )
    bench.add_argument("--rate", type=float, default=1000, help="events per second")
    bench.add_argument("--duration", type=float, default=10, help="seconds of load")
    bench.add_argument("--devices", type=int, default=100, help="simulated fences")
    bench.add_argument(
        "--sites", type=int, default=1, help="sites (their edges in a process per core)"
    )
    bench.add_argument(
        "--find-max",
        action="store_true",
        help="step the rate up to the highest that passes (a failed step is tried once more)",
    )
    bench.add_argument(
        "--compare",
        action="store_true",
        help="also run the Node-RED peer and the bare broker hop, and report the ratios",
    )
    bench.add_argument("--json", type=Path, default=None, help="also write the report here")
    bench.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the hub and edges with py-spy during each Riverguard run, into DIR",
    )
    bench.add_argument(
        "--tls",
        action="store_true",
        help="devices, edges and hub reach the broker over its TLS listener (both hops); "
        "the Node-RED peer of --compare stays plain",
    )
    bench.set_defaults(handler=_bench)
    _add_certs(commands)
    _add_broker_logins(commands)
    _add_site_config(commands)
    return parser


def _add_sim(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser("sim", help="run a simulator")
    simulators = sim.add_subparsers(dest="what", required=True)
    speakers = simulators.add_parser("speakers", help="simulated speakers of the configuration")
    speakers.add_argument("--site", default=None, help="one site only (default: all)")
    speakers.set_defaults(handler=_sim)
    swimmer = simulators.add_parser("swimmer", help="the swimmer scenario of the demo")
    swimmer.add_argument("--site", default=None, help="one site only (default: all)")
    swimmer.add_argument("--zone", default=None, help="the zone (default: first)")
    swimmer.add_argument("--loop", action="store_true", help="repeat forever")
    swimmer.add_argument(
        "--wait-for-console",
        action="store_true",
        help="before each visit, wait until someone is logged in to the console and no alarm "
        "is left unacknowledged (the demo of `riverguard up`; the hub and a login to it from "
        "RIVERGUARD_DEMO_HUB__URL, __USERNAME, __PASSWORD)",
    )
    swimmer.set_defaults(handler=_sim)
    _add_sim_fleet(simulators)
    _add_sim_run(simulators)


def _add_edge(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = commands.add_parser("edge", help="run the edge agents of one or several sites")
    edge.add_argument(
        "--site",
        required=True,
        action="append",
        help="a configured site this edge guards (repeat for several)",
    )
    edge.add_argument(
        "--logins",
        type=Path,
        default=None,
        metavar="FILE",
        help='each site\'s broker password, as {"edge-SITE": "..."} (logins.json of '
        "riverguard broker-logins): each site logs in as edge-SITE and keeps its data in "
        "DATA_DIR/edge-SITE; needed for several sites",
    )
    edge.set_defaults(handler=_edge)


def _add_sim_fleet(simulators: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = simulators.add_parser(
        "fleet", help="thousands of simulated devices, one MQTT connection each, against a stack"
    )
    fleet.add_argument(
        "--config",
        type=Path,
        required=True,
        help="the site configuration the stack runs (sim fleet-config writes one)",
    )
    fleet.add_argument("--sites", type=int, default=None, help="the first N sites (default: all)")
    fleet.add_argument(
        "--devices-per-site", type=int, default=None, help="the first M devices of each site"
    )
    fleet.add_argument("--stack", type=Path, default=None, metavar="PATH", help=STACK_HELP)
    fleet.add_argument(
        "--duration", type=float, default=None, help="seconds (default: until Ctrl-C)"
    )
    fleet.add_argument("--heartbeat", type=float, default=30.0, help="status every S seconds")
    fleet.add_argument("--wave", type=int, default=500, help="connections per connect wave")
    fleet.add_argument(
        "--noise", type=float, default=1.0, help="scale of the noise rates (0: none)"
    )
    fleet.add_argument("--speaker-speed", type=float, default=1.0, help="speaker playback speed")
    fleet.add_argument("--metrics-port", type=int, default=None, help="serve /metrics here")
    fleet.add_argument("--json", type=Path, default=None, help="also write the summary here")
    fleet.set_defaults(handler=_sim_fleet)

    config = simulators.add_parser("fleet-config", help="write a configuration of N x M devices")
    config.add_argument("--sites", type=int, required=True, help="how many sites")
    config.add_argument(
        "--devices-per-site", type=int, required=True, help="fences, cameras and speakers per site"
    )
    config.add_argument("-o", "--output", type=Path, required=True, help="the TOML file to write")
    config.set_defaults(handler=_sim_fleet_config)


def _add_sim_run(simulators: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = simulators.add_parser(
        "run", help="play a scenario (simulators/scenarios/NAME.toml, or a path) against a stack"
    )
    run.add_argument("scenario", help="a scenario name or a .toml path")
    run.add_argument("--stack", type=Path, default=None, metavar="PATH", help=STACK_HELP)
    run.add_argument("--speed", type=float, default=1.0, help="divide the scenario's times by this")
    run.add_argument("--json", type=Path, default=None, help="also write the results here")
    run.set_defaults(handler=_sim_run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "devices" and args.action != "list" and args.device is None:
        parser.error(f"devices {args.action} needs a device id")
    if args.command == "devices" and args.broker_logins is None and args.broker is not None:
        parser.error("devices --broker needs --broker-logins")
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
