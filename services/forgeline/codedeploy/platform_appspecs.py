"""The AppSpec of a Lambda or ECS deployment, parsed and checked (pure: text in, typed
AppSpec out).

A Lambda or ECS revision *is* its AppSpec: RegisterApplicationRevision's AppSpecContent or
String, or a YAML or JSON file in S3. What AWS documents for each platform:

Lambda
    version: 0.0
    Resources: exactly one entry, `<logical name>: {Type: AWS::Lambda::Function,
    Properties: {Name, Alias, CurrentVersion, TargetVersion}}`; both versions are
    published version numbers (positive whole numbers).
    Hooks: BeforeAllowTraffic and AfterAllowTraffic, each naming one Lambda function.

ECS
    version: 0.0
    Resources: exactly one entry, `<logical name>: {Type: AWS::ECS::Service, Properties:
    {TaskDefinition (the task definition's ARN), LoadBalancerInfo: {ContainerName,
    ContainerPort}, PlatformVersion?, NetworkConfiguration?: {AwsvpcConfiguration:
    {Subnets, SecurityGroups, AssignPublicIp}}, CapacityProviderStrategy?:
    [{CapacityProvider, Base?, Weight?}]}}`. NetworkConfiguration is all or nothing.
    Hooks: BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic and
    AfterAllowTraffic, each naming one Lambda function.

Keys match whatever their case: AWS's own pages write the Lambda keys both as
`currentversion` and `CurrentVersion`. Hooks are a list of one-entry mappings (AWS's form)
or a single mapping. A key the format does not have is an error, so that a misspelt
optional property is reported instead of silently ignored.

A broken AppSpec raises `PlatformAppSpecError`. An API call answers it with
InvalidRevisionException (`api_error`); a deployment that meets it fails with
`error_code` (Lambda: INVALID_LAMBDA_CONFIGURATION, the code AWS reports for a bad Lambda
AppSpec; ECS: INVALID_REVISION) and `deployment_message`, AWS's sentence for a bad AppSpec
followed by what exactly is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import re
import reprlib
from collections.abc import Sequence
from typing import Any

import yaml

from forgeline.codedeploy.generated import errors

LAMBDA = "Lambda"
ECS = "ECS"

LAMBDA_RESOURCE_TYPE = "AWS::Lambda::Function"
ECS_RESOURCE_TYPE = "AWS::ECS::Service"

# Each platform's hookable lifecycle events, in the order a deployment runs them.
LAMBDA_HOOK_EVENTS = ("BeforeAllowTraffic", "AfterAllowTraffic")
ECS_HOOK_EVENTS = (
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)

ASSIGN_PUBLIC_IP_VALUES = ("ENABLED", "DISABLED")
# Amazon ECS's limits on a service's awsvpc network and capacity provider strategy.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
MAX_CAPACITY_PROVIDERS = 6
MAX_CAPACITY_BASE = 100_000
MAX_CAPACITY_WEIGHT = 1_000

# The code a deployment fails with, and AWS's sentence before the detail, per platform.
DEPLOYMENT_ERROR_CODES = {LAMBDA: "INVALID_LAMBDA_CONFIGURATION", ECS: "INVALID_REVISION"}
_DEPLOYMENT_MESSAGES = {
    LAMBDA: "The deployment failed because the AppSpec file that specifies the AWS Lambda "
    "deployment configuration is missing or has an invalid configuration.",
    ECS: "The deployment failed because the AppSpec file that specifies the deployment "
    "configuration is missing or has an invalid configuration.",
}

# Lambda's naming rules: a function by name, partial ARN or ARN, optionally qualified by a
# version or alias (hooks may name one so); an alias is not all digits (that is a version).
_FUNCTION_PREFIX = (
    r"(?:arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(?:-gov)?-[a-z]+-\d+:\d{12}:function:|\d{12}:function:)?"
)
_FUNCTION = re.compile(_FUNCTION_PREFIX + r"[A-Za-z0-9_-]{1,64}")
_FUNCTION_REFERENCE = re.compile(
    _FUNCTION_PREFIX + r"[A-Za-z0-9_-]{1,64}(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_ALIAS = re.compile(r"(?!\d+$)[A-Za-z0-9_-]{1,128}")
_DIGITS = re.compile(r"[0-9]+")
_TASK_DEFINITION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:ecs:[a-z]{2}(?:-gov)?-[a-z]+-\d+:\d{12}:task-definition/"
    r"[A-Za-z0-9_-]{1,255}:[1-9][0-9]*"
)
_CONTAINER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")

# Values quoted in messages are cut short: YAML aliases can make a small text a huge value.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 80, 40


class PlatformAppSpecError(ValueError):
    """A Lambda or ECS AppSpec that cannot be deployed; `detail` says where and why."""

    def __init__(self, compute_platform: str, detail: str) -> None:
        super().__init__(detail)
        self.compute_platform = compute_platform
        self.detail = detail

    @property
    def error_code(self) -> str:
        """The ErrorCode a deployment that meets this AppSpec fails with."""
        return DEPLOYMENT_ERROR_CODES[self.compute_platform]

    def deployment_message(self) -> str:
        """The failed deployment's errorInformation message, in AWS's words plus the detail."""
        return f"{_DEPLOYMENT_MESSAGES[self.compute_platform]} {self.detail}"

    def api_error(self) -> errors.InvalidRevisionException:
        """What an API call that is handed this AppSpec answers."""
        return errors.InvalidRevisionException(
            f"The {self.compute_platform} AppSpec is not valid: {self.detail}"
        )


class _Problem(ValueError):
    """What is wrong, before the platform is attached (see PlatformAppSpecError)."""


@dataclasses.dataclass(frozen=True)
class LifecycleHook:
    event: str
    function_name: str  # as the AppSpec names it: a name, partial ARN or ARN


@dataclasses.dataclass(frozen=True)
class LambdaFunctionTarget:
    logical_name: str
    name: str
    alias: str
    current_version: str  # the version the alias points to now
    target_version: str  # the version traffic shifts to


@dataclasses.dataclass(frozen=True)
class LambdaAppSpec:
    function: LambdaFunctionTarget
    hooks: tuple[LifecycleHook, ...] = ()  # in the order they run

    def hook_function(self, event: str) -> str | None:
        return _hook_function(self.hooks, event)


@dataclasses.dataclass(frozen=True)
class AwsVpcConfiguration:
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str  # ENABLED or DISABLED


@dataclasses.dataclass(frozen=True)
class CapacityProviderStrategyItem:
    capacity_provider: str
    base: int = 0
    weight: int = 0


@dataclasses.dataclass(frozen=True)
class EcsServiceTarget:
    logical_name: str
    task_definition: str  # the task definition's ARN
    container_name: str
    container_port: int
    platform_version: str | None = None  # None: LATEST
    network: AwsVpcConfiguration | None = None  # None: the service's current settings
    capacity_provider_strategy: tuple[CapacityProviderStrategyItem, ...] = ()


@dataclasses.dataclass(frozen=True)
class EcsAppSpec:
    service: EcsServiceTarget
    hooks: tuple[LifecycleHook, ...] = ()  # in the order they run

    def hook_function(self, event: str) -> str | None:
        return _hook_function(self.hooks, event)


PlatformAppSpec = LambdaAppSpec | EcsAppSpec


def parse_platform_appspec(text: str | bytes, compute_platform: str) -> PlatformAppSpec:
    """The AppSpec of a Lambda or ECS revision; Server AppSpecs are the agent's business."""
    if compute_platform == LAMBDA:
        return parse_lambda_appspec(text)
    if compute_platform == ECS:
        return parse_ecs_appspec(text)
    raise ValueError(f"{compute_platform} AppSpecs are not parsed here (Lambda and ECS only)")


def parse_lambda_appspec(text: str | bytes) -> LambdaAppSpec:
    try:
        top = _top_level(_load(text))
        logical, properties, where = _one_resource(top.get("Resources"), LAMBDA_RESOURCE_TYPE)
        return LambdaAppSpec(
            function=_lambda_target(logical, properties, where),
            hooks=_hooks(top.get("Hooks"), LAMBDA_HOOK_EVENTS, LAMBDA),
        )
    except _Problem as problem:
        raise PlatformAppSpecError(LAMBDA, str(problem)) from None


def parse_ecs_appspec(text: str | bytes) -> EcsAppSpec:
    try:
        top = _top_level(_load(text))
        logical, properties, where = _one_resource(top.get("Resources"), ECS_RESOURCE_TYPE)
        return EcsAppSpec(
            service=_ecs_target(logical, properties, where),
            hooks=_hooks(top.get("Hooks"), ECS_HOOK_EVENTS, ECS),
        )
    except _Problem as problem:
        raise PlatformAppSpecError(ECS, str(problem)) from None


def check_versions_for_routing(appspec: LambdaAppSpec, routing_type: str) -> None:
    """AWS refuses a canary or linear Lambda deployment whose target version is the current
    one (there is no traffic to shift); all at once it accepts."""
    function = appspec.function
    if routing_type != "AllAtOnce" and function.current_version == function.target_version:
        raise PlatformAppSpecError(
            LAMBDA,
            f"CurrentVersion and TargetVersion of {function.name} are both "
            f"{function.current_version}: a {routing_type} deployment needs a different "
            "target version to shift traffic to.",
        )


# --- the document ----------------------------------------------------------------------------


def _load(text: str | bytes) -> object:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _Problem("The AppSpec is not UTF-8 text.") from None
    text = text.removeprefix("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise _Problem("The AppSpec is empty.")
    try:
        # JSON is tried as JSON: AWS's JSON examples indent with tabs, which YAML refuses.
        if stripped.startswith(("{", "[")):
            return json.loads(stripped)
        return yaml.safe_load(stripped)
    except json.JSONDecodeError as exc:
        raise _Problem(
            f"The AppSpec is not well-formed JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}."
        ) from None
    except yaml.YAMLError as exc:
        raise _Problem(f"The AppSpec is not well-formed YAML: {_one_line(exc)}.") from None
    except RecursionError:
        raise _Problem("The AppSpec is nested too deeply to read.") from None


def _top_level(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _Problem("The AppSpec must be a mapping with version, Resources and Hooks.")
    top = _members(document, "The AppSpec", ("version", "Resources", "Hooks"))
    version = top.get("version")
    if version is None:
        raise _Problem("The AppSpec needs version: 0.0.")
    if not _is_version_zero(version):
        raise _Problem(f"The AppSpec's version must be 0.0, not {_shown(version)}.")
    return top


def _is_version_zero(version: object) -> bool:
    if isinstance(version, bool):
        return False
    if isinstance(version, int | float):
        return version == 0
    return version == "0.0"


def _one_resource(section: object, resource_type: str) -> tuple[str, object, str]:
    """The single resource's logical name, its Properties and where they are."""
    what = "Lambda function" if resource_type == LAMBDA_RESOURCE_TYPE else "ECS service"
    if section is None:
        raise _Problem(f"The AppSpec needs Resources naming the {what} to deploy.")
    if not isinstance(section, list):
        raise _Problem(f"Resources must be a list holding the one {what} to deploy.")
    if len(section) != 1:
        raise _Problem(
            f"Resources lists {len(section)} entries; a deployment deploys exactly one {what}."
        )
    entry = section[0]
    if not isinstance(entry, dict) or len(entry) != 1:
        raise _Problem(
            f"Resources[0] must map one logical name to the {what}, e.g. "
            f"'- MyResource: {{Type: {resource_type}, Properties: ...}}'."
        )
    ((logical, body),) = entry.items()
    if not isinstance(logical, str) or not logical.strip():
        raise _Problem(f"Resources[0] must be named by text, not {_shown(logical)}.")
    where = f"Resources[0].{logical}"
    members = _members(body, where, ("Type", "Properties"), required=("Type", "Properties"))
    if members["Type"] != resource_type:
        raise _Problem(f"{where}.Type must be {resource_type}, not {_shown(members['Type'])}.")
    return logical, members["Properties"], f"{where}.Properties"


def _hooks(section: object, events: Sequence[str], platform: str) -> tuple[LifecycleHook, ...]:
    if section is None:
        return ()
    entries: list[tuple[object, object, str]]
    if isinstance(section, dict):
        entries = [(event, name, f"Hooks.{event}") for event, name in section.items()]
    elif isinstance(section, list):
        entries = []
        for index, entry in enumerate(section):
            if not isinstance(entry, dict) or len(entry) != 1:
                raise _Problem(
                    f"Hooks[{index}] must map one lifecycle event to a function name, "
                    f"e.g. '- {events[-1]}: MyValidationFunction'."
                )
            ((event, name),) = entry.items()
            entries.append((event, name, f"Hooks[{index}]"))
    else:
        raise _Problem("Hooks must be a list of 'LifecycleEvent: FunctionName' entries.")
    canonical = {event.lower(): event for event in events}
    chosen: dict[str, str] = {}
    for key, name, where in entries:
        event = canonical.get(key.lower()) if isinstance(key, str) else None
        if event is None:
            raise _Problem(
                f"{where}: {_shown(key)} is not a lifecycle event of {platform} deployments; "
                f"hooks may run at {', '.join(events)}."
            )
        if event in chosen:
            raise _Problem(f"Hooks name {event} twice; each lifecycle event runs one function.")
        chosen[event] = _function_reference(name, f"Hooks.{event}")
    return tuple(LifecycleHook(event, chosen[event]) for event in events if event in chosen)


def _hook_function(hooks: tuple[LifecycleHook, ...], event: str) -> str | None:
    return next((hook.function_name for hook in hooks if hook.event == event), None)


# --- Lambda ----------------------------------------------------------------------------------


def _lambda_target(logical: str, properties: object, where: str) -> LambdaFunctionTarget:
    names = ("Name", "Alias", "CurrentVersion", "TargetVersion")
    members = _members(properties, where, names, required=names)
    name = _name(members["Name"], f"{where}.Name")
    if not _FUNCTION.fullmatch(name):
        raise _Problem(
            f"{where}.Name {_shown(name)} is not a Lambda function name (letters, digits, - and _, "
            "at most 64) or function ARN."
        )
    alias = _name(members["Alias"], f"{where}.Alias")
    if not _ALIAS.fullmatch(alias):
        raise _Problem(
            f"{where}.Alias {_shown(alias)} is not a Lambda alias name (letters, digits, - and _, "
            "at most 128, not all digits)."
        )
    return LambdaFunctionTarget(
        logical_name=logical,
        name=name,
        alias=alias,
        current_version=_version_number(members["CurrentVersion"], f"{where}.CurrentVersion"),
        target_version=_version_number(members["TargetVersion"], f"{where}.TargetVersion"),
    )


def _version_number(value: object, where: str) -> str:
    """A published Lambda version: a positive whole number, written as a number or text."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _Problem(
            f"{where} must be a published Lambda version number such as 3, not {_shown(value)}."
        )
    if number < 1:
        raise _Problem(f"{where} must be a positive version number, not {_shown(value)}.")
    return str(number)


def _function_reference(value: object, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Problem(f"{where}: the Lambda function name cannot be null or empty.")
    name = _name(value, where)
    if not _FUNCTION_REFERENCE.fullmatch(name):
        raise _Problem(
            f"{where} {_shown(name)} is not a Lambda function name, partial ARN or ARN "
            "(optionally with :version or :alias)."
        )
    return name


# --- ECS -------------------------------------------------------------------------------------


def _ecs_target(logical: str, properties: object, where: str) -> EcsServiceTarget:
    members = _members(
        properties,
        where,
        (
            "TaskDefinition",
            "LoadBalancerInfo",
            "PlatformVersion",
            "NetworkConfiguration",
            "CapacityProviderStrategy",
        ),
        required=("TaskDefinition", "LoadBalancerInfo"),
    )
    task_definition = _name(members["TaskDefinition"], f"{where}.TaskDefinition")
    if not _TASK_DEFINITION_ARN.fullmatch(task_definition):
        raise _Problem(
            f"{where}.TaskDefinition must be a task definition ARN "
            "(arn:aws:ecs:region:account-id:task-definition/family:revision), "
            f"not {_shown(task_definition)}."
        )
    balancer_where = f"{where}.LoadBalancerInfo"
    balancer = _members(
        members["LoadBalancerInfo"],
        balancer_where,
        ("ContainerName", "ContainerPort"),
        required=("ContainerName", "ContainerPort"),
    )
    container = _name(balancer["ContainerName"], f"{balancer_where}.ContainerName")
    if not _CONTAINER_NAME.fullmatch(container):
        raise _Problem(
            f"{balancer_where}.ContainerName {_shown(container)} is not a container name "
            "(letters, digits, - and _, at most 255)."
        )
    platform_version = members.get("PlatformVersion")
    return EcsServiceTarget(
        logical_name=logical,
        task_definition=task_definition,
        container_name=container,
        container_port=_whole_number(
            balancer["ContainerPort"], f"{balancer_where}.ContainerPort", 1, 65535
        ),
        platform_version=(
            None
            if platform_version is None
            else _name(platform_version, f"{where}.PlatformVersion")
        ),
        network=_network(members.get("NetworkConfiguration"), f"{where}.NetworkConfiguration"),
        capacity_provider_strategy=_capacity_strategy(
            members.get("CapacityProviderStrategy"), f"{where}.CapacityProviderStrategy"
        ),
    )


def _network(section: object, where: str) -> AwsVpcConfiguration | None:
    if section is None:
        return None
    vpc_where = f"{where}.AwsvpcConfiguration"
    outer = _members(section, where, ("AwsvpcConfiguration",), required=("AwsvpcConfiguration",))
    names = ("Subnets", "SecurityGroups", "AssignPublicIp")
    vpc = _members(outer["AwsvpcConfiguration"], vpc_where, names)
    missing = [name for name in names if vpc.get(name) is None]
    if missing:
        raise _Problem(
            f"{vpc_where} leaves out {', '.join(missing)}: give all of Subnets, "
            "SecurityGroups and AssignPublicIp, or leave NetworkConfiguration out to keep "
            "the service's current network settings."
        )
    assign = vpc["AssignPublicIp"]
    if assign not in ASSIGN_PUBLIC_IP_VALUES:
        raise _Problem(
            f"{vpc_where}.AssignPublicIp must be ENABLED or DISABLED, not {_shown(assign)}."
        )
    return AwsVpcConfiguration(
        subnets=_names(vpc["Subnets"], f"{vpc_where}.Subnets", MAX_SUBNETS),
        security_groups=_names(
            vpc["SecurityGroups"], f"{vpc_where}.SecurityGroups", MAX_SECURITY_GROUPS
        ),
        assign_public_ip=assign,
    )


def _capacity_strategy(section: object, where: str) -> tuple[CapacityProviderStrategyItem, ...]:
    if section is None:
        return ()
    if not isinstance(section, list) or not section:
        raise _Problem(f"{where} must be a list of capacity providers.")
    if len(section) > MAX_CAPACITY_PROVIDERS:
        raise _Problem(
            f"{where} lists {len(section)} capacity providers; at most "
            f"{MAX_CAPACITY_PROVIDERS} are allowed."
        )
    items = []
    for index, entry in enumerate(section):
        entry_where = f"{where}[{index}]"
        members = _members(
            entry,
            entry_where,
            ("CapacityProvider", "Base", "Weight"),
            required=("CapacityProvider",),
        )
        provider = _name(members["CapacityProvider"], f"{entry_where}.CapacityProvider")
        if len(provider) > 255:
            raise _Problem(f"{entry_where}.CapacityProvider is longer than 255 characters.")
        base, weight = members.get("Base"), members.get("Weight")
        items.append(
            CapacityProviderStrategyItem(
                capacity_provider=provider,
                base=0
                if base is None
                else _whole_number(base, f"{entry_where}.Base", 0, MAX_CAPACITY_BASE),
                weight=0
                if weight is None
                else _whole_number(weight, f"{entry_where}.Weight", 0, MAX_CAPACITY_WEIGHT),
            )
        )
    providers = [item.capacity_provider for item in items]
    repeated = sorted({name for name in providers if providers.count(name) > 1})
    if repeated:
        raise _Problem(f"{where} names capacity provider {repeated[0]} more than once.")
    if sum(1 for item in items if item.base > 0) > 1:
        raise _Problem(f"{where}: only one capacity provider may have a Base.")
    if len(items) > 1 and all(item.weight == 0 for item in items):
        raise _Problem(
            f"{where}: at least one of several capacity providers needs a Weight above 0."
        )
    return tuple(items)


# --- values ----------------------------------------------------------------------------------


def _members(
    value: object, where: str, names: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    """A mapping's members under their documented names, its keys matched in any case."""
    if not isinstance(value, dict):
        raise _Problem(f"{where} must be a mapping of {', '.join(names)}, not {_shown(value)}.")
    canonical = {name.lower(): name for name in names}
    found: dict[str, Any] = {}
    for key, item in value.items():
        name = canonical.get(key.lower()) if isinstance(key, str) else None
        if name is None:
            raise _Problem(f"{where} has {_shown(key)}, which is not one of {', '.join(names)}.")
        if name in found:
            raise _Problem(f"{where} gives {name} twice.")
        found[name] = item
    missing = [name for name in required if found.get(name) is None]
    if missing:
        raise _Problem(f"{where} needs {' and '.join(missing)}.")
    return found


def _name(value: object, where: str) -> str:
    """Non-empty text; a bare whole number (YAML reads `name: 123` as one) counts as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Problem(f"{where} must be text, not {_shown(value)}.")
    text = value.strip()
    if not text:
        raise _Problem(f"{where} is empty.")
    return text


def _names(value: object, where: str, most: int) -> tuple[str, ...]:
    """A list of names; AWS's page also allows one comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _Problem(f"{where} must be a list, not {_shown(value)}.")
    names = tuple(_name(item, f"{where}[{index}]") for index, item in enumerate(items))
    if not names:
        raise _Problem(f"{where} is empty.")
    if len(names) > most:
        raise _Problem(f"{where} lists {len(names)} entries; at most {most} are allowed.")
    return names


def _whole_number(value: object, where: str, least: int, most: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _Problem(f"{where} must be a whole number, not {_shown(value)}.")
    if not least <= number <= most:
        raise _Problem(f"{where} must be between {least} and {most}, not {number}.")
    return number


def _shown(value: object) -> str:
    return _REPR.repr(value)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
