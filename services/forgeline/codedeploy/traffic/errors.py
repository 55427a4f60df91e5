"""What the traffic proxy raises. Every message says what is wrong and, where it can, what
to do about it."""

from __future__ import annotations


class TrafficError(Exception):
    """Base of the traffic proxy's errors."""


class InvalidTrafficConfig(TrafficError, ValueError):
    """A name, address, port, weight or option the proxy cannot accept."""


class UnknownTargetGroup(TrafficError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"target group {name!r} does not exist: create it first (forgeline traffic "
            f"target-group create --name {name} --port PORT)"
        )
        self.name = name


class UnknownMember(TrafficError, LookupError):
    def __init__(self, target_group: str, member: str) -> None:
        super().__init__(f"target group {target_group!r} has no member {member!r}")
        self.target_group = target_group
        self.member = member


class HaproxyNotInstalled(TrafficError):
    """No usable haproxy binary on this machine."""


class ProxyStartFailed(TrafficError):
    """HAProxy did not start, or did not take a new configuration."""


class RuntimeCommandFailed(TrafficError):
    """HAProxy's runtime API refused a command, or could not be reached."""

    def __init__(self, command: str, answer: str) -> None:
        super().__init__(f"HAProxy refused {command!r}: {answer.strip() or 'no answer'}")
        self.command = command
        self.answer = answer
