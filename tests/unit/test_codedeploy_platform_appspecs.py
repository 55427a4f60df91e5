"""Lambda and ECS AppSpecs: the forms AWS documents parse to typed AppSpecs, and every way
one can be wrong is refused with a message naming the place and the rule."""

from __future__ import annotations

import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline.codedeploy.generated import errors
from forgeline.codedeploy.platform_appspecs import (
    AwsVpcConfiguration,
    CapacityProviderStrategyItem,
    EcsAppSpec,
    LambdaAppSpec,
    LambdaFunctionTarget,
    LifecycleHook,
    PlatformAppSpecError,
    check_versions_for_routing,
    parse_ecs_appspec,
    parse_lambda_appspec,
    parse_platform_appspec,
)

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"

# AWS's documented Lambda form: lower-case keys, hooks as a list of one-entry mappings.
LAMBDA_YAML = textwrap.dedent(
    """\
    version: 0.0
    resources:
      - myLambdaFunction:
          type: "AWS::Lambda::Function"
          properties:
            name: "orders"
            alias: "live"
            currentversion: "1"
            targetversion: "2"
    hooks:
      - AfterAllowTraffic: "CheckAfterTraffic"
      - BeforeAllowTraffic: "arn:aws:lambda:us-east-1:123456789012:function:CheckBefore"
    """
)

# AWS's documented ECS form, every optional property included.
ECS_YAML = textwrap.dedent(
    f"""\
    version: 0.0
    Resources:
      - TargetService:
          Type: AWS::ECS::Service
          Properties:
            TaskDefinition: "{TASK_ARN}"
            LoadBalancerInfo:
              ContainerName: "web"
              ContainerPort: 8080
            PlatformVersion: "1.4.0"
            NetworkConfiguration:
              AwsvpcConfiguration:
                Subnets: ["subnet-1", "subnet-2"]
                SecurityGroups: ["sg-1"]
                AssignPublicIp: "DISABLED"
            CapacityProviderStrategy:
              - Base: 1
                CapacityProvider: "FARGATE_SPOT"
                Weight: 2
              - CapacityProvider: "FARGATE"
                Weight: 1
    Hooks:
      - AfterAllowTraffic: "AfterAllow"
      - BeforeInstall: "BeforeInstall"
      - AfterAllowTestTraffic: "TestTraffic"
      - AfterInstall: "AfterInstall"
      - BeforeAllowTraffic: "BeforeAllow"
    """
)


def lambda_doc(**properties: object) -> dict[str, object]:
    props: dict[str, object] = {
        "Name": "orders",
        "Alias": "live",
        "CurrentVersion": "1",
        "TargetVersion": "2",
    }
    props.update(properties)
    return {
        "version": "0.0",
        "Resources": [{"fn": {"Type": "AWS::Lambda::Function", "Properties": props}}],
    }


def ecs_doc(**properties: object) -> dict[str, object]:
    props: dict[str, object] = {
        "TaskDefinition": TASK_ARN,
        "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80},
    }
    props.update(properties)
    return {
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": props}}],
    }


def lambda_error(document: object) -> PlatformAppSpecError:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(PlatformAppSpecError) as caught:
        parse_lambda_appspec(text)
    assert caught.value.compute_platform == "Lambda"
    return caught.value


def ecs_error(document: object) -> PlatformAppSpecError:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(PlatformAppSpecError) as caught:
        parse_ecs_appspec(text)
    assert caught.value.compute_platform == "ECS"
    return caught.value


# --- Lambda: accepted forms ------------------------------------------------------------------


def test_lambda_yaml_in_awss_documented_form() -> None:
    spec = parse_lambda_appspec(LAMBDA_YAML)
    assert spec == LambdaAppSpec(
        function=LambdaFunctionTarget(
            logical_name="myLambdaFunction",
            name="orders",
            alias="live",
            current_version="1",
            target_version="2",
        ),
        # In the order the deployment runs them, not the file's order.
        hooks=(
            LifecycleHook(
                "BeforeAllowTraffic", "arn:aws:lambda:us-east-1:123456789012:function:CheckBefore"
            ),
            LifecycleHook("AfterAllowTraffic", "CheckAfterTraffic"),
        ),
    )
    assert spec.hook_function("AfterAllowTraffic") == "CheckAfterTraffic"
    assert spec.hook_function("BeforeInstall") is None


def test_lambda_json_indented_with_tabs_as_awss_pages_show_it() -> None:
    text = (
        '{\n\t"version": "0.0",\n\t"Resources": [{\n\t\t"fn": {\n\t\t\t"Type": '
        '"AWS::Lambda::Function",\n\t\t\t"Properties": {"Name": "orders", "Alias": "live", '
        '"CurrentVersion": 3, "TargetVersion": 4}\n\t\t}\n\t}],\n\t"Hooks": '
        '[{"BeforeAllowTraffic": "Check"}]\n}'
    )
    spec = parse_lambda_appspec(text)
    assert (spec.function.current_version, spec.function.target_version) == ("3", "4")
    assert spec.hooks == (LifecycleHook("BeforeAllowTraffic", "Check"),)


def test_lambda_versions_as_numbers_and_hooks_as_one_mapping() -> None:
    document = lambda_doc(CurrentVersion=7, TargetVersion=" 12 ")
    document["Hooks"] = {"afterallowtraffic": "orders-check:live"}
    spec = parse_lambda_appspec(json.dumps(document).encode())
    assert (spec.function.current_version, spec.function.target_version) == ("7", "12")
    assert spec.hooks == (LifecycleHook("AfterAllowTraffic", "orders-check:live"),)


def test_lambda_without_hooks_and_with_a_byte_order_mark() -> None:
    spec = parse_lambda_appspec("\ufeff" + json.dumps(lambda_doc()))
    assert spec.hooks == ()
    assert spec.function.alias == "live"


@pytest.mark.parametrize(
    "name",
    [
        "orders",
        "123456789012:function:orders",
        "arn:aws:lambda:eu-west-1:123456789012:function:o_1",
    ],
)
def test_lambda_function_by_name_partial_arn_or_arn(name: str) -> None:
    assert parse_lambda_appspec(json.dumps(lambda_doc(Name=name))).function.name == name


# --- Lambda: refused -------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["Name", "Alias", "CurrentVersion", "TargetVersion"])
def test_lambda_each_property_is_required(member: str) -> None:
    document = lambda_doc()
    props = document["Resources"][0]["fn"]["Properties"]  # type: ignore[index]
    del props[member]
    error = lambda_error(document)
    assert error.detail == f"Resources[0].fn.Properties needs {member}."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$LATEST", "must be a published Lambda version number such as 3, not '$LATEST'"),
        (0, "must be a positive version number, not 0"),
        ("1.5", "must be a published Lambda version number such as 3, not '1.5'"),
        (True, "must be a published Lambda version number such as 3, not True"),
        (-1, "must be a positive version number, not -1"),
    ],
)
def test_lambda_versions_must_be_published_version_numbers(value: object, expected: str) -> None:
    error = lambda_error(lambda_doc(TargetVersion=value))
    assert error.detail == f"Resources[0].fn.Properties.TargetVersion {expected}."


def test_lambda_alias_cannot_be_a_version_number() -> None:
    error = lambda_error(lambda_doc(Alias="42"))
    assert "Resources[0].fn.Properties.Alias '42' is not a Lambda alias name" in error.detail


def test_lambda_function_name_with_forbidden_characters() -> None:
    error = lambda_error(lambda_doc(Name="orders service"))
    assert "Name 'orders service' is not a Lambda function name" in error.detail


def test_lambda_resource_must_be_a_lambda_function() -> None:
    document = lambda_doc()
    document["Resources"][0]["fn"]["Type"] = "AWS::ECS::Service"  # type: ignore[index]
    assert lambda_error(document).detail == (
        "Resources[0].fn.Type must be AWS::Lambda::Function, not 'AWS::ECS::Service'."
    )


def test_lambda_deploys_exactly_one_function() -> None:
    document = lambda_doc()
    document["Resources"] = document["Resources"] * 2  # type: ignore[operator]
    assert lambda_error(document).detail == (
        "Resources lists 2 entries; a deployment deploys exactly one Lambda function."
    )
    del document["Resources"]
    assert lambda_error(document).detail == (
        "The AppSpec needs Resources naming the Lambda function to deploy."
    )


def test_lambda_hook_at_an_ecs_only_event() -> None:
    document = lambda_doc()
    document["Hooks"] = [{"AfterAllowTestTraffic": "Check"}]
    assert lambda_error(document).detail == (
        "Hooks[0]: 'AfterAllowTestTraffic' is not a lifecycle event of Lambda deployments; "
        "hooks may run at BeforeAllowTraffic, AfterAllowTraffic."
    )


def test_lambda_hook_without_a_function_name() -> None:
    document = lambda_doc()
    document["Hooks"] = [{"AfterAllowTraffic": None}, {"BeforeAllowTraffic": "Check"}]
    assert lambda_error(document).detail == (
        "Hooks.AfterAllowTraffic: the Lambda function name cannot be null or empty."
    )


def test_lambda_hook_named_twice() -> None:
    document = lambda_doc()
    document["Hooks"] = [{"BeforeAllowTraffic": "A"}, {"beforeAllowTraffic": "B"}]
    assert lambda_error(document).detail == (
        "Hooks name BeforeAllowTraffic twice; each lifecycle event runs one function."
    )


def test_lambda_hook_entry_with_two_events() -> None:
    document = lambda_doc()
    document["Hooks"] = [{"BeforeAllowTraffic": "A", "AfterAllowTraffic": "B"}]
    assert lambda_error(document).detail.startswith(
        "Hooks[0] must map one lifecycle event to a function name"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (None, "The AppSpec needs version: 0.0."),
        ("1", "The AppSpec's version must be 0.0, not '1'."),
        (1, "The AppSpec's version must be 0.0, not 1."),
    ],
)
def test_version_must_be_zero(version: object, expected: str) -> None:
    document = lambda_doc()
    document["version"] = version
    assert lambda_error(document).detail == expected


def test_a_server_section_is_not_part_of_a_lambda_appspec() -> None:
    document = lambda_doc()
    document["os"] = "linux"
    assert lambda_error(document).detail == (
        "The AppSpec has 'os', which is not one of version, Resources, Hooks."
    )


def test_a_misspelt_property_is_named() -> None:
    document = lambda_doc()
    document["Resources"][0]["fn"]["Properties"]["CurentVersion"] = "1"  # type: ignore[index]
    assert lambda_error(document).detail == (
        "Resources[0].fn.Properties has 'CurentVersion', which is not one of "
        "Name, Alias, CurrentVersion, TargetVersion."
    )


def test_a_key_given_twice_in_different_case() -> None:
    document = lambda_doc()
    document["Resources"][0]["fn"]["Properties"]["name"] = "other"  # type: ignore[index]
    assert lambda_error(document).detail == "Resources[0].fn.Properties gives Name twice."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "The AppSpec is empty."),
        ("   \n", "The AppSpec is empty."),
        ("- just\n- a list\n", "The AppSpec must be a mapping with version, Resources and Hooks."),
        ('{"version": "0.0",', "The AppSpec is not well-formed JSON: Expecting property name"),
        ("version: [0.0\n", "The AppSpec is not well-formed YAML:"),
        ("[" * 50_000, "The AppSpec"),
    ],
)
def test_unreadable_content(text: str, expected: str) -> None:
    assert lambda_error(text).detail.startswith(expected)


def test_content_that_is_not_utf8() -> None:
    with pytest.raises(PlatformAppSpecError, match="not UTF-8"):
        parse_lambda_appspec(b"version: \xff\xfe")


def test_a_lambda_error_as_the_api_and_a_deployment_report_it() -> None:
    error = lambda_error(lambda_doc(TargetVersion="$LATEST"))
    assert error.error_code == "INVALID_LAMBDA_CONFIGURATION"
    assert error.deployment_message() == (
        "The deployment failed because the AppSpec file that specifies the AWS Lambda "
        "deployment configuration is missing or has an invalid configuration. " + error.detail
    )
    api = error.api_error()
    assert isinstance(api, errors.InvalidRevisionException)
    assert api.message == f"The Lambda AppSpec is not valid: {error.detail}"


def test_canary_and_linear_need_a_new_target_version() -> None:
    same = parse_lambda_appspec(json.dumps(lambda_doc(CurrentVersion="5", TargetVersion=5)))
    check_versions_for_routing(same, "AllAtOnce")
    for routing in ("TimeBasedCanary", "TimeBasedLinear"):
        with pytest.raises(PlatformAppSpecError) as caught:
            check_versions_for_routing(same, routing)
        assert caught.value.detail == (
            f"CurrentVersion and TargetVersion of orders are both 5: a {routing} deployment "
            "needs a different target version to shift traffic to."
        )
    check_versions_for_routing(parse_lambda_appspec(json.dumps(lambda_doc())), "TimeBasedLinear")


# --- ECS -------------------------------------------------------------------------------------


def test_ecs_yaml_with_every_documented_property() -> None:
    spec = parse_ecs_appspec(ECS_YAML)
    assert isinstance(spec, EcsAppSpec)
    service = spec.service
    assert service.logical_name == "TargetService"
    assert service.task_definition == TASK_ARN
    assert (service.container_name, service.container_port) == ("web", 8080)
    assert service.platform_version == "1.4.0"
    assert service.network == AwsVpcConfiguration(("subnet-1", "subnet-2"), ("sg-1",), "DISABLED")
    assert service.capacity_provider_strategy == (
        CapacityProviderStrategyItem("FARGATE_SPOT", base=1, weight=2),
        CapacityProviderStrategyItem("FARGATE", base=0, weight=1),
    )
    assert [hook.event for hook in spec.hooks] == [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    assert spec.hook_function("AfterAllowTestTraffic") == "TestTraffic"


def test_ecs_minimal_json() -> None:
    spec = parse_ecs_appspec(json.dumps(ecs_doc()))
    assert spec.service.platform_version is None
    assert spec.service.network is None
    assert spec.service.capacity_provider_strategy == ()
    assert spec.hooks == ()


def test_ecs_subnets_as_one_comma_separated_string() -> None:
    network = {
        "AwsvpcConfiguration": {
            "Subnets": "subnet-1, subnet-2",
            "SecurityGroups": ["sg-1"],
            "AssignPublicIp": "ENABLED",
        }
    }
    spec = parse_ecs_appspec(json.dumps(ecs_doc(NetworkConfiguration=network)))
    assert spec.service.network == AwsVpcConfiguration(
        ("subnet-1", "subnet-2"), ("sg-1",), "ENABLED"
    )


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"TaskDefinition": "web:7"},
            "Resources[0].TargetService.Properties.TaskDefinition must be a task definition ARN "
            "(arn:aws:ecs:region:account-id:task-definition/family:revision), not 'web:7'.",
        ),
        (
            {"LoadBalancerInfo": {"ContainerName": "web"}},
            "Resources[0].TargetService.Properties.LoadBalancerInfo needs ContainerPort.",
        ),
        (
            {"LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 70000}},
            "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort must be "
            "between 1 and 65535, not 70000.",
        ),
        (
            {"LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": "http"}},
            "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort must be a "
            "whole number, not 'http'.",
        ),
        (
            {"LoadBalancerInfo": {"ContainerName": "web app", "ContainerPort": 80}},
            "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerName 'web app' is "
            "not a container name (letters, digits, - and _, at most 255).",
        ),
        (
            {"PlatfromVersion": "LATEST"},
            "Resources[0].TargetService.Properties has 'PlatfromVersion', which is not one of "
            "TaskDefinition, LoadBalancerInfo, PlatformVersion, NetworkConfiguration, "
            "CapacityProviderStrategy.",
        ),
    ],
)
def test_ecs_properties_refused(properties: dict[str, object], expected: str) -> None:
    assert ecs_error(ecs_doc(**properties)).detail == expected


def test_ecs_network_configuration_is_all_or_nothing() -> None:
    network = {"AwsvpcConfiguration": {"Subnets": ["subnet-1"]}}
    assert ecs_error(ecs_doc(NetworkConfiguration=network)).detail == (
        "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration leaves "
        "out SecurityGroups, AssignPublicIp: give all of Subnets, SecurityGroups and "
        "AssignPublicIp, or leave NetworkConfiguration out to keep the service's current "
        "network settings."
    )


def test_ecs_network_values_checked() -> None:
    def network(**vpc: object) -> dict[str, object]:
        given: dict[str, object] = {
            "Subnets": ["s"],
            "SecurityGroups": ["g"],
            "AssignPublicIp": "ENABLED",
        }
        given.update(vpc)
        return {"AwsvpcConfiguration": given}

    where = "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration"
    assert ecs_error(ecs_doc(NetworkConfiguration=network(AssignPublicIp="yes"))).detail == (
        f"{where}.AssignPublicIp must be ENABLED or DISABLED, not 'yes'."
    )
    many = [f"subnet-{index}" for index in range(17)]
    assert ecs_error(ecs_doc(NetworkConfiguration=network(Subnets=many))).detail == (
        f"{where}.Subnets lists 17 entries; at most 16 are allowed."
    )
    assert ecs_error(ecs_doc(NetworkConfiguration=network(SecurityGroups=[]))).detail == (
        f"{where}.SecurityGroups is empty."
    )


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ([], " must be a list of capacity providers."),
        ([{"Weight": 1}], "[0] needs CapacityProvider."),
        (
            [{"CapacityProvider": "A", "Weight": 1}, {"CapacityProvider": "A", "Weight": 1}],
            " names capacity provider A more than once.",
        ),
        (
            [
                {"CapacityProvider": "A", "Base": 1, "Weight": 1},
                {"CapacityProvider": "B", "Base": 2, "Weight": 1},
            ],
            ": only one capacity provider may have a Base.",
        ),
        (
            [{"CapacityProvider": "A"}, {"CapacityProvider": "B"}],
            ": at least one of several capacity providers needs a Weight above 0.",
        ),
        (
            [{"CapacityProvider": f"P{index}", "Weight": 1} for index in range(7)],
            " lists 7 capacity providers; at most 6 are allowed.",
        ),
        (
            [{"CapacityProvider": "A", "Weight": 1001}],
            "[0].Weight must be between 0 and 1000, not 1001.",
        ),
    ],
)
def test_ecs_capacity_provider_strategy_refused(strategy: object, expected: str) -> None:
    where = "Resources[0].TargetService.Properties.CapacityProviderStrategy"
    assert ecs_error(ecs_doc(CapacityProviderStrategy=strategy)).detail == where + expected


def test_ecs_resource_must_be_an_ecs_service() -> None:
    document = ecs_doc()
    document["Resources"][0]["TargetService"]["Type"] = "AWS::Lambda::Function"  # type: ignore[index]
    assert ecs_error(document).detail == (
        "Resources[0].TargetService.Type must be AWS::ECS::Service, not 'AWS::Lambda::Function'."
    )


def test_ecs_hook_at_an_unknown_event() -> None:
    document = ecs_doc()
    document["Hooks"] = [{"ValidateService": "Check"}]
    assert ecs_error(document).detail == (
        "Hooks[0]: 'ValidateService' is not a lifecycle event of ECS deployments; hooks may "
        "run at BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, "
        "AfterAllowTraffic."
    )


def test_an_ecs_error_as_a_deployment_reports_it() -> None:
    error = ecs_error(ecs_doc(TaskDefinition=""))
    assert error.error_code == "INVALID_REVISION"
    assert error.deployment_message().startswith(
        "The deployment failed because the AppSpec file that specifies the deployment "
        "configuration is missing or has an invalid configuration. Resources[0]"
    )


def test_parse_by_compute_platform() -> None:
    assert isinstance(parse_platform_appspec(LAMBDA_YAML, "Lambda"), LambdaAppSpec)
    assert isinstance(parse_platform_appspec(ECS_YAML, "ECS"), EcsAppSpec)
    with pytest.raises(ValueError, match="Lambda and ECS only"):
        parse_platform_appspec(LAMBDA_YAML, "Server")


# --- whatever arrives ------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "Resources",
                    "Hooks",
                    "Type",
                    "Properties",
                    "Name",
                    "TaskDefinition",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | _json_values.map(json.dumps))
def test_any_content_parses_or_is_refused_with_a_message(text: str) -> None:
    for parse in (parse_lambda_appspec, parse_ecs_appspec):
        try:
            parse(text)
        except PlatformAppSpecError as error:
            assert error.detail


def test_a_value_swollen_by_yaml_aliases_is_quoted_short() -> None:
    # A short text whose value holds 4**12 leaves: the message must not spell it out.
    value = "&a0 [x, x, x, x]"
    for n in range(1, 12):
        value = f"&a{n} [{value}, *a{n - 1}, *a{n - 1}, *a{n - 1}]"
    error = lambda_error(f"version: {value}\n")
    assert error.detail.startswith("The AppSpec's version must be 0.0, not [[")
    assert len(error.detail) < 200
