"""The pure parts of BlockTraffic / AllowTraffic: which target groups a deployment moves
instances between, where an instance's service answers, and the target group's
deregistration delay as it is stored."""

from __future__ import annotations

import pytest

from forgeline.codedeploy.deploying.traffic_steps import ADDRESS_TAG, _outcome, service_address
from forgeline.codedeploy.orchestrator.events import ServerStepFailed
from forgeline.codedeploy.orchestrator.options import (
    DeploymentOptions,
    resolve_options,
    target_group_names,
)
from forgeline.codedeploy.traffic.errors import InvalidTrafficConfig
from forgeline.codedeploy.traffic.model import TargetGroup


def test_target_groups_come_from_both_kinds_of_load_balancer_info_once_each() -> None:
    info = {
        "elbInfoList": [{"name": "classic"}],
        "targetGroupInfoList": [{"name": "web"}, {"name": "classic"}, {}],
    }
    assert target_group_names(info) == ("classic", "web")  # type: ignore[arg-type]
    assert target_group_names({}) == ()


def test_options_carry_the_groups_target_groups_and_read_older_documents() -> None:
    group = {
        "deploymentStyle": {
            "deploymentType": "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web"}]},
    }
    options = resolve_options(group, {})  # type: ignore[typeddict-item]
    assert options.traffic_control and options.target_groups == ("web",)
    assert DeploymentOptions.from_document(options.to_document()) == options
    older = options.to_document()
    del older["targetGroups"]  # stored before target groups were kept
    assert DeploymentOptions.from_document(older).target_groups == ()


def test_the_service_address_is_the_address_tag() -> None:
    tags = [{"Key": "Role", "Value": "web"}, {"Key": ADDRESS_TAG, "Value": "127.0.0.1:8080"}]
    assert service_address(tags) == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ([], "has no forgeline:address tag"),
        ([{"Key": ADDRESS_TAG, "Value": "localhost"}], "is not HOST:PORT"),
        ([{"Key": ADDRESS_TAG, "Value": "10.0.0.1:99999"}], "is not HOST:PORT"),
    ],
)
def test_a_missing_or_bad_address_says_what_to_do(tags: list[dict[str, str]], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        service_address(tags)
    # AllowTraffic then fails the instance with that reason, before touching the proxy.
    outcome = _outcome("AllowTraffic", "i-1", ("web",), tags)
    assert isinstance(outcome, ServerStepFailed)
    assert outcome.instance_id == "i-1" and "i-1" in outcome.message and says in outcome.message


def test_deregistration_delay_is_validated_stored_and_defaults_to_elbs() -> None:
    group = TargetGroup("web", 8080, deregistration_delay_seconds=5)
    document = group.to_document()
    assert document["deregistrationDelaySeconds"] == 5.0
    assert TargetGroup.from_document("web", document) == group
    del document["deregistrationDelaySeconds"]
    assert TargetGroup.from_document("web", document).deregistration_delay_seconds == 300.0
    # Not a listener property: changing it reloads nothing.
    assert group.listener() == TargetGroup("web", 8080).listener()
    with pytest.raises(InvalidTrafficConfig, match="from 0 to 3600"):
        TargetGroup("web", 8080, deregistration_delay_seconds=3601)
