"""The traffic proxy's pure parts: the model and its validation, the haproxy.cfg it renders,
the runtime answers it parses and the runtime changes it plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeline.codedeploy.traffic.config import ProxyOptions, render
from forgeline.codedeploy.traffic.errors import (
    InvalidTrafficConfig,
    RuntimeCommandFailed,
    UnknownMember,
    UnknownTargetGroup,
)
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.model import (
    DRAIN,
    MAINT,
    READY,
    Address,
    HealthCheck,
    Member,
    ProxyModel,
    TargetGroup,
)
from forgeline.codedeploy.traffic.process import parse_show_proc
from forgeline.codedeploy.traffic.reconcile import (
    AddServer,
    RemoveServer,
    SetAddress,
    SetState,
    SetWeight,
    plan_group,
)
from forgeline.codedeploy.traffic.runtime import (
    RuntimeClient,
    ServerStat,
    parse_backends,
    parse_servers_state,
    parse_stat,
)

LAYOUT = ProxyLayout(Path("/srv/forgeline/traffic"))


def member(name: str, address: str = "10.0.0.5:80", weight: int = 1, state: str = READY) -> Member:
    return Member(name, Address.parse(address), weight, state)


# Names, addresses, weights.


@pytest.mark.parametrize("name", ["web", "web-tg", "i-0abc123", "api.v2:blue", "A_1", "x" * 64])
def test_haproxy_identifiers_are_accepted(name: str) -> None:
    assert TargetGroup(name, 8080).name == name
    assert member(name).name == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is required"),
        ("a b", "is not valid"),
        ("web/blue", "is not valid"),
        ("-web", "starting with a letter or digit"),
        ("web;del", "is not valid"),
        ("x" * 65, "too long"),
    ],
)
def test_bad_names_are_refused_saying_why(name: str, problem: str) -> None:
    with pytest.raises(InvalidTrafficConfig, match=problem):
        TargetGroup(name, 8080)
    with pytest.raises(InvalidTrafficConfig, match=f"member name.*{problem}"):
        member(name)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("10.0.0.5:8080", "10.0.0.5:8080"),
        ("[fd00::5]:80", "[fd00::5]:80"),
        ("[FD00:0::5]:80", "[fd00::5]:80"),
    ],
)
def test_addresses_parse_and_render_as_haproxy_reads_them(text: str, rendered: str) -> None:
    assert str(Address.parse(text)) == rendered


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "required"),
        ("10.0.0.5", "needs a port"),
        ("10.0.0.5:", "needs a port"),
        ("10.0.0.5:http", "needs a port"),
        ("10.0.0.5:0", "port number from 1 to 65535"),
        ("10.0.0.5:70000", "port number from 1 to 65535"),
        ("example.com:80", "not an IP address"),
        ("fd00::5:80", "write IPv6 addresses as"),
        ("[fd00::5]80", "needs a port"),
    ],
)
def test_bad_addresses_are_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidTrafficConfig, match=problem):
        Address.parse(text)


@pytest.mark.parametrize("weight", [-1, 257, 1.5, True, "10", None])
def test_weights_must_be_whole_numbers_haproxy_accepts(weight: object) -> None:
    with pytest.raises(InvalidTrafficConfig, match="from 0 to 256"):
        Member("blue", Address.parse("10.0.0.5:80"), weight)  # type: ignore[arg-type]


def test_states_are_ready_drain_or_maint() -> None:
    assert [member("m", state=s).state for s in (READY, DRAIN, MAINT)] == [READY, DRAIN, MAINT]
    with pytest.raises(InvalidTrafficConfig, match="one of ready, drain, maint"):
        member("m", state="paused")


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        (dict(path="health"), "must start with '/'"),
        (dict(path="/a b"), "no spaces"),
        (dict(path='/"x"'), "quotes"),
        (dict(interval_seconds=0), "interval"),
        (dict(interval_seconds=float("nan")), "interval"),
        (dict(rise=0), "rise"),
        (dict(fall=101), "fall"),
    ],
)
def test_bad_health_checks_are_refused(check: dict, problem: str) -> None:
    with pytest.raises(InvalidTrafficConfig, match=problem):
        HealthCheck(**check)


def test_a_group_lists_a_member_once_and_two_groups_never_share_a_port() -> None:
    with pytest.raises(InvalidTrafficConfig, match="more than once: blue"):
        TargetGroup("web", 8080, members=(member("blue"), member("blue", weight=2)))
    with pytest.raises(InvalidTrafficConfig, match="cannot both listen on port 8080"):
        ProxyModel((TargetGroup("web", 8080), TargetGroup("api", 8080)))
    with pytest.raises(InvalidTrafficConfig, match="cannot both listen"):
        ProxyModel((TargetGroup("web", 8080, "0.0.0.0"), TargetGroup("api", 8080)))
    both = ProxyModel((TargetGroup("web", 8080), TargetGroup("api", 8080, "127.0.0.2")))
    assert [g.name for g in both.target_groups] == ["api", "web"]


def test_lookups_name_what_is_missing() -> None:
    model = ProxyModel((TargetGroup("web", 8080, members=(member("blue"),)),))
    with pytest.raises(UnknownTargetGroup, match="'api' does not exist"):
        model.group("api")
    with pytest.raises(UnknownMember, match="'web' has no member 'green'"):
        model.group("web").member("green")


def test_the_document_round_trips_and_a_foreign_version_is_refused() -> None:
    model = ProxyModel(
        (
            TargetGroup(
                "web",
                8080,
                health_check=HealthCheck("/health", 0.5, 2, 3),
                members=(member("blue", weight=90), member("green", "[::1]:81", 10, DRAIN)),
            ),
            TargetGroup("api", 9090, "0.0.0.0"),
        )
    )
    document = json.loads(json.dumps(model.to_document()))
    assert ProxyModel.from_document(document) == model
    with pytest.raises(InvalidTrafficConfig, match="version 2"):
        ProxyModel.from_document({**document, "version": 2})


def test_only_listener_changes_change_the_fingerprint() -> None:
    group = TargetGroup("web", 8080, members=(member("blue"),))
    model = ProxyModel((group,))
    fingerprint = model.listeners_fingerprint()

    reweighted = model.with_group(group.with_member(member("blue", weight=50, state=DRAIN)))
    more = model.with_group(group.with_member(member("green")))
    assert reweighted.listeners_fingerprint() == fingerprint
    assert more.listeners_fingerprint() == fingerprint

    moved = model.with_group(TargetGroup("web", 8081, members=group.members))
    checked = model.with_group(TargetGroup("web", 8080, health_check=HealthCheck()))
    added = model.with_group(TargetGroup("api", 9090))
    changed = {m.listeners_fingerprint() for m in (moved, checked, added)}
    assert fingerprint not in changed and len(changed) == 3


# Layout and options.


def test_layout_refuses_paths_haproxy_would_misread() -> None:
    with pytest.raises(InvalidTrafficConfig, match="may hold only"):
        ProxyLayout(Path("/srv/my data/traffic"))
    with pytest.raises(InvalidTrafficConfig, match="may hold only"):
        ProxyLayout(Path("/srv/a,b/traffic"))


def test_sockets_too_deep_for_haproxy_go_to_a_short_directory_named_after_it() -> None:
    shallow = ProxyLayout(Path("/srv/forgeline/traffic"))
    assert shallow.runtime_socket == Path("/srv/forgeline/traffic/runtime.sock")
    deep = ProxyLayout(Path("/srv/" + "d" * 90 + "/traffic"))
    assert deep.runtime_socket.parent == deep.master_socket.parent
    assert deep.runtime_socket.parent.name.startswith("forgeline-traffic-")
    assert len(str(deep.runtime_socket)) <= 97  # HAProxy's limit for a socket path
    # The same directory always finds the same sockets; another finds others.
    assert ProxyLayout(Path("/srv/" + "d" * 90 + "/traffic")).runtime_socket == deep.runtime_socket
    assert ProxyLayout(Path("/srv/" + "e" * 90 + "/traffic")).runtime_socket != deep.runtime_socket


def test_options_refuse_nonsense() -> None:
    with pytest.raises(InvalidTrafficConfig, match="connect_timeout"):
        ProxyOptions(connect_timeout=0)
    with pytest.raises(InvalidTrafficConfig, match="retries"):
        ProxyOptions(retries=11)


# Rendering.


def test_the_configuration_has_the_admin_socket_state_file_and_sane_defaults() -> None:
    text = render(ProxyModel(), LAYOUT, ProxyOptions(connect_timeout=2, hard_stop_after=30))
    lines = [line.strip() for line in text.splitlines()]

    assert (
        "stats socket /srv/forgeline/traffic/runtime.sock mode 600 level admin expose-fd listeners"
        in lines
    )
    assert "server-state-file /srv/forgeline/traffic/server-state" in lines
    assert "load-server-state-from-file global" in lines
    assert "hard-stop-after 30000ms" in lines
    assert "timeout connect 2000ms" in lines
    for expected in (
        "mode http",
        "option redispatch",
        "option idle-close-on-response",
        "retries 3",
        "timeout client 60000ms",
        "timeout http-keep-alive 10000ms",
    ):
        assert expected in lines
    assert "frontend" not in text


def test_each_group_is_a_frontend_on_its_port_and_a_roundrobin_backend() -> None:
    model = ProxyModel(
        (
            TargetGroup(
                "web",
                8080,
                members=(
                    member("blue", "10.0.0.5:80", 90),
                    member("green", "[fd00::6]:80", 10, DRAIN),
                    member("old", "10.0.0.7:80", 5, MAINT),
                ),
            ),
            TargetGroup("api", 9090, "::1"),
        )
    )
    text = render(model, LAYOUT)

    assert (
        "frontend web\n    bind 127.0.0.1:8080\n    default_backend web\n\n"
        "backend web\n    balance roundrobin\n"
        "    server blue 10.0.0.5:80 weight 90\n"
        # A draining member takes no new request from the first moment of a new worker.
        "    server green [fd00::6]:80 weight 0\n"
        "    server old 10.0.0.7:80 weight 5 disabled\n"
    ) in text
    assert "frontend api\n    bind [::1]:9090\n" in text
    assert text.index("backend api") < text.index("backend web")  # groups in name order


def test_a_health_check_goes_on_the_backend_and_every_server() -> None:
    group = TargetGroup(
        "web",
        8080,
        health_check=HealthCheck("/health?deep=1", 0.25, rise=2, fall=4),
        members=(member("blue"),),
    )
    text = render(ProxyModel((group,)), LAYOUT)

    assert "    option httpchk GET /health?deep=1\n" in text
    assert "    server blue 10.0.0.5:80 weight 1 check inter 250 rise 2 fall 4\n" in text


def test_the_same_model_renders_the_same_text() -> None:
    one = ProxyModel((TargetGroup("b", 2, members=(member("y"), member("x"))), TargetGroup("a", 1)))
    two = ProxyModel((TargetGroup("a", 1), TargetGroup("b", 2, members=(member("x"), member("y")))))
    assert render(one, LAYOUT) == render(two, LAYOUT)


# Parsing what HAProxy answers.

SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web 1 blue 127.0.0.1 2 0 90 90 3 1 0 2 0 0 0 0 - 18101 - 0 0 - - 0
3 web 2 green 127.0.0.1 2 8 50 10 0 1 0 0 0 0 0 0 - 18102 - 0 0 - - 0
3 web 3 old ::1 0 1 4 4 0 6 2 0 6 0 0 0 - 18103 - 0 0 - - 0

"""


def test_servers_state_rows_read_by_column_name() -> None:
    rows = parse_servers_state(SERVERS_STATE)

    assert [(r.name, r.host, r.port, r.weight) for r in rows] == [
        ("blue", "127.0.0.1", 18101, 90),
        ("green", "127.0.0.1", 18102, 50),
        ("old", "::1", 18103, 4),
    ]
    assert [r.admin_state for r in rows] == [READY, DRAIN, MAINT]
    assert [r.health for r in rows] == ["up", "up", "down"]
    assert [r.check_enabled for r in rows] == [False, False, True]
    assert parse_servers_state("1\n# be_id be_name\n") == []


def test_stat_rows_keep_servers_only() -> None:
    text = (
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status\n"
        "web,FRONTEND,,,3,5,9980,121,OPEN\n"
        "web,blue,1,1,2,3,,91,UP\n"
        "web,green,0,0,0,1,,30,DRAIN\n"
        "web,BACKEND,0,0,2,3,998,121,UP\n"
        "\n"
    )
    assert parse_stat(text) == [
        ServerStat("web", "blue", 2, 1, 91, "UP"),
        ServerStat("web", "green", 0, 0, 30, "DRAIN"),
    ]
    assert parse_stat("Unknown command.\n") == []


def test_backends_and_process_tables_parse() -> None:
    assert parse_backends("# name\nweb\napi\n\n") == ["web", "api"]
    table = parse_show_proc(
        "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "1162            master          5 [failed: 1]   0d00h02m07s     2.6.12\n"
        "# workers\n"
        "1271            worker          0               0d00h00m00s     2.6.12\n"
        "# old workers\n"
        "1233            worker          3               0d00h00m43s     2.6.12\n"
        "# programs\n"
    )
    assert (table.master_pid, table.reloads, table.failed_reloads) == (1162, 5, 1)
    assert (table.workers, table.old_workers) == ((1271,), (1233,))


# Planning runtime changes.


def live(rows: str) -> list:
    header = SERVERS_STATE.splitlines()[:2]
    return parse_servers_state("\n".join([*header, *rows.strip().splitlines()]))


def test_a_backend_that_matches_needs_nothing() -> None:
    group = TargetGroup(
        "web",
        8080,
        members=(
            member("blue", "127.0.0.1:18101", 90),
            member("green", "127.0.0.1:18102", 50, DRAIN),
        ),
    )
    servers = live(
        """
        3 web 1 blue 127.0.0.1 2 0 90 90 3 1 0 2 0 0 0 0 - 18101 - 0 0 - - 0
        3 web 2 green 127.0.0.1 2 8 50 10 0 1 0 0 0 0 0 0 - 18102 - 0 0 - - 0
        """
    )
    assert plan_group(group, servers) == []


def test_missing_members_are_added_then_strangers_removed() -> None:
    check = HealthCheck()
    ready, drained, parked = member("a"), member("b", state=DRAIN), member("c", state=MAINT)
    group = TargetGroup("web", 8080, health_check=check, members=(ready, drained, parked))
    servers = live("3 web 9 stranger 10.0.0.9 2 0 1 1 0 1 0 0 0 0 0 0 - 80 - 0 0 - - 0")

    assert plan_group(group, servers) == [
        AddServer(ready, check),
        SetState("a", READY),
        AddServer(drained, check),
        SetState("b", DRAIN),
        AddServer(parked, check),  # added servers start in maintenance: nothing more
        RemoveServer("stranger"),
    ]


def test_traffic_is_taken_away_before_a_weight_and_given_after_it() -> None:
    servers = live(
        """
        3 web 1 blue 127.0.0.1 2 0 90 90 3 1 0 2 0 0 0 0 - 18101 - 0 0 - - 0
        3 web 2 green 127.0.0.1 2 8 50 50 0 1 0 0 0 0 0 0 - 18102 - 0 0 - - 0
        """
    )
    group = TargetGroup(
        "web",
        8080,
        members=(
            member("blue", "127.0.0.1:18101", 10, DRAIN),
            member("green", "127.0.0.2:18102", 60, READY),
        ),
    )
    assert plan_group(group, servers) == [
        SetState("blue", DRAIN),
        SetWeight("blue", 10),
        SetAddress("green", Address.parse("127.0.0.2:18102")),
        SetWeight("green", 60),
        SetState("green", READY),
    ]


def test_other_backends_rows_are_ignored() -> None:
    servers = live("4 api 1 blue 127.0.0.1 2 0 1 1 0 1 0 0 0 0 0 0 - 80 - 0 0 - - 0")
    assert plan_group(TargetGroup("web", 8080), servers) == []


# Waiting for a drain (the runtime API replaced by a script of counters).


class _ScriptedRuntime(RuntimeClient):
    def __init__(self, in_flight: list[int]) -> None:
        super().__init__(Path("/nonexistent.sock"))
        self.in_flight = in_flight
        self.now = 0.0

    def server_stat(self, backend: str, server: str) -> ServerStat | None:
        count = self.in_flight.pop(0) if self.in_flight else 0
        return ServerStat(backend, server, count, 0, 0, "DRAIN")

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_drain_ends_when_the_last_request_finishes() -> None:
    runtime = _ScriptedRuntime([3, 2, 1, 0])
    result = runtime.wait_until_drained(
        "web", "blue", 10, poll_interval=0.5, clock=runtime.clock, sleep=runtime.sleep
    )
    assert (result.drained, result.remaining, result.waited_seconds) == (True, 0, 1.5)


def test_a_drain_gives_up_when_its_time_runs_out() -> None:
    runtime = _ScriptedRuntime([4] * 100)
    result = runtime.wait_until_drained(
        "web", "blue", 2, poll_interval=0.5, clock=runtime.clock, sleep=runtime.sleep
    )
    assert (result.drained, result.remaining, result.waited_seconds) == (False, 4, 2.0)


def test_refusals_quote_haproxy() -> None:
    error = RuntimeCommandFailed(
        "del server web/blue", "Server still has connections attached to it.\n"
    )
    assert "HAProxy refused 'del server web/blue': Server still has connections" in str(error)
