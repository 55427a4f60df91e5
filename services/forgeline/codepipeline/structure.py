"""A pipeline declaration checked against AWS's pipeline structure rules, as CreatePipeline
and UpdatePipeline apply them once the request validator has enforced the model's own
constraints (required members, patterns, lengths, enums, list sizes, ranges). Pure: no
database. Each broken rule raises the error AWS answers, with a message that names the
stage, action, artifact or trigger at fault.

Pipeline (InvalidStructureException)
    2 to 50 stages. The first stage holds Source actions only, and no other stage holds one.
    pipelineType defaults to V1; pipeline variables, triggers and the QUEUED and PARALLEL
    execution modes are V2 features (V1 runs SUPERSEDED only). Exactly one of artifactStore
    and artifactStores; artifactStores, used for cross-region actions, has an S3 store for the
    pipeline's own Region and for every Region an action runs in (a key that is not a Region
    name is a ValidationException, as on AWS). At most 50 variables, names unique. Triggers name a
    CodeStarSourceConnection Source action of the pipeline (the only provider AWS triggers
    on), one trigger per action, with at most 3 push and 3 pull request filters of at most 8
    patterns a list.

Stage (InvalidStageDeclarationException)
    Names unique (case-sensitive). 1 to 50 actions. Stage conditions are V2 only, and each
    kind engages only the results AWS documents: beforeEntry FAIL or SKIP, onSuccess
    ROLLBACK or FAIL, onFailure ROLLBACK or RETRY (its conditions ROLLBACK); a retry
    configuration goes with RETRY. Blockers (InvalidBlockerDeclarationException) are of type
    Schedule, names unique in the stage.

Action (InvalidActionDeclarationException)
    Names unique within their stage (AWS: "All action names within a stage must be unique").
    runOrder 1 to 999, 1 when absent. The action type exists: built-in
    (codepipeline/action_types.py) or a custom type the caller knows; a built-in type this
    server does not run is refused by name. The pipeline type allows the action type
    (Commands and other managed-compute types are V2 only). Artifact counts within the
    type's bounds. Configuration has every required key and no key the type lacks. Output
    artifact names are unique in the pipeline, and an input artifact is the output of an
    action in an earlier stage or of one with a lower runOrder in the same stage. Namespaces
    are unique in the pipeline. `commands` only (and always) for Compute/Commands,
    `outputVariables` only for it; `timeoutInMinutes` only for the manual approval action
    (the model: "available only to the manual approval ActionType"). An action in another
    Region than the pipeline's needs artifactStores with that Region, and cannot be a Source
    action or one of a ThirdParty or Custom provider.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from forgeline.codepipeline import action_types
from forgeline.codepipeline.generated import errors, shapes

V1 = action_types.V1
V2 = action_types.V2
DEFAULT_PIPELINE_TYPE = V1
DEFAULT_RUN_ORDER = 1

# AWS's quotas and limits on a pipeline's structure.
MIN_STAGES = 2
MAX_STAGES = 50
MAX_ACTIONS_PER_STAGE = 50
MAX_VARIABLES = 50
MIN_RUN_ORDER = 1
MAX_RUN_ORDER = 999
MIN_COMMANDS = 1
MAX_COMMANDS = 50
MAX_PUSH_FILTERS = 3
MAX_PULL_REQUEST_FILTERS = 3
MAX_FILTER_PATTERNS = 8

SOURCE = "Source"
V1_EXECUTION_MODES = ("SUPERSEDED",)
ARTIFACT_STORE_TYPE = "S3"
TRIGGER_PROVIDER = "CodeStarSourceConnection"
BLOCKER_TYPES = ("Schedule",)
COMMANDS_TYPE = ("Compute", action_types.AWS, "Commands")
MANUAL_APPROVAL_TYPE = ("Approval", action_types.AWS, "Manual")

# The results each kind of stage condition may engage ("Configure conditions for a stage").
ENTRY_RESULTS = ("FAIL", "SKIP")
SUCCESS_RESULTS = ("ROLLBACK", "FAIL")
FAILURE_RESULTS = ("ROLLBACK", "RETRY")
FAILURE_CONDITION_RESULTS = ("ROLLBACK",)
RETRY_RESULT = "RETRY"

# Region names: us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-isob-east-1 ...
_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")


@dataclass(frozen=True)
class CustomActionTypeInfo:
    """What a custom action type (owner Custom, CreateCustomActionType) declares that a
    pipeline's use of it is checked against."""

    input_artifacts: tuple[int, int]  # (minimum, maximum)
    output_artifacts: tuple[int, int]
    property_names: tuple[str, ...] = ()
    required_property_names: frozenset[str] = frozenset()

    @classmethod
    def from_action_type(cls, action_type: shapes.ActionType) -> CustomActionTypeInfo:
        """From the type as CreateCustomActionType answered it."""
        properties = action_type.get("actionConfigurationProperties") or []
        inputs, outputs = action_type["inputArtifactDetails"], action_type["outputArtifactDetails"]
        return cls(
            input_artifacts=(inputs["minimumCount"], inputs["maximumCount"]),
            output_artifacts=(outputs["minimumCount"], outputs["maximumCount"]),
            property_names=tuple(prop["name"] for prop in properties),
            required_property_names=frozenset(p["name"] for p in properties if p["required"]),
        )


CustomActionTypes = Callable[[shapes.ActionTypeId], CustomActionTypeInfo | None]


@dataclass(frozen=True)
class _TypeRules:
    """What an action is checked against, whether its type is built-in or custom."""

    category: str
    owner: str
    provider: str
    input_artifacts: tuple[int, int]
    output_artifacts: tuple[int, int]
    property_names: tuple[str, ...]
    required_property_names: tuple[str, ...]
    pipeline_types: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.category}/{self.provider}"

    def is_type(self, category: str, owner: str, provider: str) -> bool:
        return (self.category, self.owner, self.provider) == (category, owner, provider)


def _no_custom_action_types(_: shapes.ActionTypeId) -> CustomActionTypeInfo | None:
    return None


def validate_pipeline(
    declaration: shapes.PipelineDeclaration,
    *,
    custom_action_types: CustomActionTypes = _no_custom_action_types,
    region: str | None = None,
) -> None:
    """Raise the AWS error for the first rule `declaration` breaks; return if it keeps them.

    `custom_action_types` finds a custom type by id (None when there is none). `region` is
    the pipeline's Region: with it, an action naming another Region is a cross-region action;
    without it, only artifactStores' entries are checked against action Regions."""
    pipeline_type = declaration.get("pipelineType") or DEFAULT_PIPELINE_TYPE
    _check_v2_members(declaration, pipeline_type)
    _check_artifact_stores(declaration, region)
    _check_variables(declaration.get("variables") or [])
    stages = declaration["stages"]
    _check_stage_count(stages)
    _check_stage_names(stages)
    for stage in stages:
        _check_stage(stage, pipeline_type)
    _check_source_placement(stages)
    _check_triggers(declaration.get("triggers") or [], stages)
    for stage in stages:
        _check_action_names(stage)
        for action in stage["actions"]:
            rules = _resolve_type(stage["name"], action, custom_action_types)
            _check_action(stage["name"], action, rules, pipeline_type, declaration, region)
    _check_namespaces(stages)
    _check_artifact_flow(stages)


def _where(stage_name: str, action: shapes.ActionDeclaration) -> str:
    """How messages name an action: "action 'Build' in stage 'Build'"."""
    return f"action '{action['name']}' in stage '{stage_name}'"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _run_order(action: shapes.ActionDeclaration) -> int:
    run_order = action.get("runOrder")
    return DEFAULT_RUN_ORDER if run_order is None else run_order


def _bounds(bounds: tuple[int, int]) -> str:
    low, high = bounds
    if high == 0:
        return "none"
    return f"exactly {low}" if low == high else f"{low} to {high}"


# -- the pipeline -------------------------------------------------------------------------
def _check_v2_members(declaration: shapes.PipelineDeclaration, pipeline_type: str) -> None:
    if pipeline_type == V2:
        return
    invalid = errors.InvalidStructureException
    if declaration.get("variables"):
        raise invalid(
            "Pipeline variables are only available for V2 type pipelines; set pipelineType to V2."
        )
    if declaration.get("triggers"):
        raise invalid("Triggers are only available for V2 type pipelines; set pipelineType to V2.")
    mode = declaration.get("executionMode")
    if mode is not None and mode not in V1_EXECUTION_MODES:
        raise invalid(
            f"Execution mode {mode} is only available for V2 type pipelines; a {pipeline_type} "
            f"pipeline runs in {' or '.join(V1_EXECUTION_MODES)} mode."
        )


def _check_artifact_stores(declaration: shapes.PipelineDeclaration, region: str | None) -> None:
    invalid = errors.InvalidStructureException
    store, stores = declaration.get("artifactStore"), declaration.get("artifactStores")
    if store is not None and stores:
        raise invalid(
            "A pipeline has either artifactStore or artifactStores, not both; use "
            "artifactStores (one store per Region) when actions run in other Regions."
        )
    if store is None and not stores:
        raise invalid("A pipeline needs an artifactStore, or artifactStores for cross-region use.")
    if store is not None:
        _check_store(store, "artifactStore")
        return
    for store_region, regional in (stores or {}).items():
        if not _REGION.fullmatch(store_region):
            raise errors.ValidationException(
                f"The region {store_region} specified in 'pipeline.artifactStores' is not a "
                "valid AWS Region."
            )
        _check_store(regional, f"artifactStores.{store_region}")
    if region is not None and region not in (stores or {}):
        raise invalid(
            f"artifactStores has no artifact store for the pipeline's Region {region}; it needs "
            "one there and one in each Region an action runs in."
        )


def _check_store(store: shapes.ArtifactStore, where: str) -> None:
    if store.get("type") != ARTIFACT_STORE_TYPE:
        raise errors.InvalidStructureException(
            f"{where} has type {store.get('type')!r}; the only artifact store type is "
            f"{ARTIFACT_STORE_TYPE}."
        )
    if not store.get("location"):
        raise errors.InvalidStructureException(f"{where} needs a location (an S3 bucket name).")


def _check_variables(variables: Sequence[shapes.PipelineVariableDeclaration]) -> None:
    invalid = errors.InvalidStructureException
    if len(variables) > MAX_VARIABLES:
        raise invalid(
            f"A pipeline declares at most {MAX_VARIABLES} variables; this one has {len(variables)}."
        )
    seen: set[str] = set()
    for variable in variables:
        if variable["name"] in seen:
            raise invalid(
                f"The pipeline variable '{variable['name']}' is declared more than once; "
                "variable names must be unique."
            )
        seen.add(variable["name"])


# -- stages -------------------------------------------------------------------------------
def _check_stage_count(stages: Sequence[shapes.StageDeclaration]) -> None:
    if len(stages) < MIN_STAGES:
        raise errors.InvalidStructureException(
            f"A pipeline needs at least {MIN_STAGES} stages (a source stage and one more); "
            f"this one has {len(stages)}."
        )
    if len(stages) > MAX_STAGES:
        raise errors.InvalidStructureException(
            f"A pipeline has at most {MAX_STAGES} stages; this one has {len(stages)}."
        )


def _check_stage_names(stages: Sequence[shapes.StageDeclaration]) -> None:
    seen: set[str] = set()
    for stage in stages:
        if stage["name"] in seen:
            raise errors.InvalidStageDeclarationException(
                f"Stage name '{stage['name']}' is used by more than one stage; stage names "
                "must be unique in a pipeline."
            )
        seen.add(stage["name"])


def _check_stage(stage: shapes.StageDeclaration, pipeline_type: str) -> None:
    count = len(stage["actions"])
    if count == 0:
        raise errors.InvalidStageDeclarationException(
            f"Stage '{stage['name']}' has no actions; a stage needs at least one."
        )
    if count > MAX_ACTIONS_PER_STAGE:
        raise errors.InvalidStageDeclarationException(
            f"Stage '{stage['name']}' has {count} actions; a stage has at most "
            f"{MAX_ACTIONS_PER_STAGE}."
        )
    _check_blockers(stage)
    _check_conditions(stage, pipeline_type)


def _check_blockers(stage: shapes.StageDeclaration) -> None:
    seen: set[str] = set()
    for blocker in stage.get("blockers") or []:
        if blocker["type"] not in BLOCKER_TYPES:
            raise errors.InvalidBlockerDeclarationException(
                f"Blocker '{blocker['name']}' in stage '{stage['name']}' has type "
                f"{blocker['type']!r}; the only blocker type is {', '.join(BLOCKER_TYPES)}."
            )
        if blocker["name"] in seen:
            raise errors.InvalidBlockerDeclarationException(
                f"Blocker name '{blocker['name']}' is used more than once in stage "
                f"'{stage['name']}'; blocker names must be unique in a stage."
            )
        seen.add(blocker["name"])


def _check_conditions(stage: shapes.StageDeclaration, pipeline_type: str) -> None:
    name = stage["name"]
    given = [kind for kind in ("beforeEntry", "onSuccess", "onFailure") if kind in stage]
    if given and pipeline_type != V2:
        raise errors.InvalidStageDeclarationException(
            f"Stage '{name}' declares {given[0]}, and stage conditions are only available "
            "for V2 type pipelines; set pipelineType to V2."
        )
    if "beforeEntry" in stage:
        _check_condition_results(
            name, "beforeEntry", stage["beforeEntry"]["conditions"], ENTRY_RESULTS
        )
    if "onSuccess" in stage:
        _check_condition_results(
            name, "onSuccess", stage["onSuccess"]["conditions"], SUCCESS_RESULTS
        )
    if "onFailure" in stage:
        _check_on_failure(name, stage["onFailure"])


def _check_on_failure(stage_name: str, on_failure: shapes.FailureConditions) -> None:
    result = on_failure.get("result")
    if result is not None and result not in FAILURE_RESULTS:
        raise errors.InvalidStageDeclarationException(
            f"Stage '{stage_name}' has onFailure result {result}; a failed stage can "
            f"{' or '.join(FAILURE_RESULTS)}."
        )
    if "retryConfiguration" in on_failure and result != RETRY_RESULT:
        raise errors.InvalidStageDeclarationException(
            f"Stage '{stage_name}' has an onFailure retryConfiguration without result "
            f"{RETRY_RESULT}; the retry configuration only applies to {RETRY_RESULT}."
        )
    _check_condition_results(
        stage_name, "onFailure", on_failure.get("conditions") or [], FAILURE_CONDITION_RESULTS
    )


def _check_condition_results(
    stage_name: str, kind: str, conditions: Sequence[shapes.Condition], allowed: Sequence[str]
) -> None:
    for condition in conditions:
        result = condition.get("result")
        if result is not None and result not in allowed:
            raise errors.InvalidStageDeclarationException(
                f"Stage '{stage_name}' has a {kind} condition with result {result}; "
                f"{kind} conditions engage {' or '.join(allowed)}."
            )
        rules = condition.get("rules") or []
        if rules:
            # Accepting rules this server would never evaluate would leave a stage that
            # looks guarded and is not: refuse them by name instead.
            names = ", ".join(
                f"{rule.get('name')} ({rule.get('ruleTypeId', {}).get('provider')})"
                for rule in rules
            )
            raise errors.InvalidStageDeclarationException(
                f"Stage '{stage_name}' has a {kind} condition with rules ({names}); this "
                "server does not evaluate stage condition rules: leave them out (an "
                "onFailure result of RETRY or ROLLBACK works without them)."
            )


def _check_source_placement(stages: Sequence[shapes.StageDeclaration]) -> None:
    first = stages[0]
    for action in first["actions"]:
        category = action["actionTypeId"]["category"]
        if category != SOURCE:
            raise errors.InvalidStructureException(
                f"The first stage '{first['name']}' may hold only Source actions; action "
                f"'{action['name']}' is a {category} action."
            )
    for stage in stages[1:]:
        for action in stage["actions"]:
            if action["actionTypeId"]["category"] == SOURCE:
                raise errors.InvalidStructureException(
                    f"{_cap(_where(stage['name'], action))} is a Source action; Source actions "
                    f"belong in the first stage ('{first['name']}') only."
                )


# -- actions ------------------------------------------------------------------------------
def _check_action_names(stage: shapes.StageDeclaration) -> None:
    seen: set[str] = set()
    for action in stage["actions"]:
        if action["name"] in seen:
            raise errors.InvalidActionDeclarationException(
                f"Action name '{action['name']}' is used more than once in stage "
                f"'{stage['name']}'; action names must be unique within a stage."
            )
        seen.add(action["name"])


def _resolve_type(
    stage_name: str, action: shapes.ActionDeclaration, custom_action_types: CustomActionTypes
) -> _TypeRules:
    type_id = action["actionTypeId"]
    category, owner, provider = type_id["category"], type_id["owner"], type_id["provider"]
    builtin = action_types.find_builtin(category, owner, provider, type_id["version"])
    if builtin is not None:
        if not builtin.supported:
            raise errors.InvalidActionDeclarationException(
                f"{_cap(_where(stage_name, action))} uses provider {provider}, which this server "
                f"cannot run: supported providers are {_supported_providers()}."
            )
        return _TypeRules(
            category=category,
            owner=owner,
            provider=provider,
            input_artifacts=builtin.input_artifacts,
            output_artifacts=builtin.output_artifacts,
            property_names=builtin.property_names,
            required_property_names=builtin.required_property_names,
            pipeline_types=builtin.pipeline_types,
        )
    custom = custom_action_types(type_id) if owner == action_types.CUSTOM else None
    if custom is None:
        raise errors.InvalidActionDeclarationException(
            f"ActionType (Category: '{category}', Provider: '{provider}', Owner: '{owner}', "
            f"Version: '{type_id['version']}') of {_where(stage_name, action)} does not exist."
        )
    return _TypeRules(
        category=category,
        owner=owner,
        provider=provider,
        input_artifacts=custom.input_artifacts,
        output_artifacts=custom.output_artifacts,
        property_names=custom.property_names,
        required_property_names=tuple(sorted(custom.required_property_names)),
        pipeline_types=action_types.ALL_PIPELINE_TYPES,
    )


def _supported_providers() -> str:
    return ", ".join(kind.label for kind in action_types.supported_action_types())


def _check_action(
    stage_name: str,
    action: shapes.ActionDeclaration,
    rules: _TypeRules,
    pipeline_type: str,
    declaration: shapes.PipelineDeclaration,
    region: str | None,
) -> None:
    where = _cap(_where(stage_name, action))
    _check_run_order(where, action)
    if pipeline_type not in rules.pipeline_types:
        raise errors.InvalidActionDeclarationException(
            f"{where} uses {rules.label}, which is only available for "
            f"{' and '.join(sorted(rules.pipeline_types))} type pipelines; set pipelineType "
            f"to {max(rules.pipeline_types)}."
        )
    _check_artifact_counts(where, action, rules)
    _check_configuration(where, action, rules)
    _check_compute_members(where, action, rules)
    _check_timeout(where, action, rules)
    _check_region(where, action, rules, declaration, region)
    _check_unrun_options(where, action)


def _check_unrun_options(where: str, action: shapes.ActionDeclaration) -> None:
    """Configuration this server's actions do not carry out yet: refused, never ignored."""
    provider = action["actionTypeId"]["provider"]
    configuration = action.get("configuration") or {}
    if provider == "CodeBuild" and str(configuration.get("BatchEnabled", "")).lower() == "true":
        raise errors.InvalidActionDeclarationException(
            f"{where} sets BatchEnabled: this server's pipelines run single builds only; "
            "leave BatchEnabled (and CombineArtifacts) out."
        )


def _check_run_order(where: str, action: shapes.ActionDeclaration) -> None:
    run_order = _run_order(action)
    if not MIN_RUN_ORDER <= run_order <= MAX_RUN_ORDER:
        raise errors.InvalidActionDeclarationException(
            f"{where} has runOrder {run_order}; runOrder is a whole number from "
            f"{MIN_RUN_ORDER} to {MAX_RUN_ORDER}."
        )


def _check_artifact_counts(where: str, action: shapes.ActionDeclaration, rules: _TypeRules) -> None:
    for kind, count, bounds in (
        ("input", len(action.get("inputArtifacts") or []), rules.input_artifacts),
        ("output", len(action.get("outputArtifacts") or []), rules.output_artifacts),
    ):
        low, high = bounds
        if not low <= count <= high:
            raise errors.InvalidActionDeclarationException(
                f"{where} has {count} {kind} artifacts; {rules.label} takes {_bounds(bounds)}."
            )


def _check_configuration(where: str, action: shapes.ActionDeclaration, rules: _TypeRules) -> None:
    configuration = action.get("configuration") or {}
    missing = [name for name in rules.required_property_names if name not in configuration]
    if missing:
        raise errors.InvalidActionDeclarationException(
            f"{where} is missing required configuration {', '.join(missing)} for {rules.label}."
        )
    unknown = sorted(set(configuration) - set(rules.property_names))
    if not unknown:
        return
    if not rules.property_names:
        raise errors.InvalidActionDeclarationException(
            f"{where} has configuration {', '.join(unknown)}, but {rules.label} takes no "
            "configuration keys."
        )
    raise errors.InvalidActionDeclarationException(
        f"{where} has configuration {', '.join(unknown)}, which {rules.label} does not have; "
        f"its keys are {', '.join(sorted(rules.property_names))}."
    )


def _check_compute_members(where: str, action: shapes.ActionDeclaration, rules: _TypeRules) -> None:
    """commands and outputVariables belong to the Commands action alone."""
    is_commands = rules.is_type(*COMMANDS_TYPE)
    commands = action.get("commands") or []
    if commands and not is_commands:
        raise errors.InvalidActionDeclarationException(
            f"{where} has commands, which only a Compute/Commands action takes."
        )
    if is_commands and not MIN_COMMANDS <= len(commands) <= MAX_COMMANDS:
        raise errors.InvalidActionDeclarationException(
            f"{where} is a Commands action and needs {MIN_COMMANDS} to {MAX_COMMANDS} "
            f"commands; it has {len(commands)}."
        )
    if action.get("outputVariables") and not is_commands:
        raise errors.InvalidActionDeclarationException(
            f"{where} has outputVariables, which only a Compute/Commands action exports."
        )


def _check_timeout(where: str, action: shapes.ActionDeclaration, rules: _TypeRules) -> None:
    if "timeoutInMinutes" in action and not rules.is_type(*MANUAL_APPROVAL_TYPE):
        raise errors.InvalidActionDeclarationException(
            f"{where} sets timeoutInMinutes, which only a manual approval (Approval/Manual) "
            f"action takes; {rules.label} has a fixed timeout."
        )


def _check_region(
    where: str,
    action: shapes.ActionDeclaration,
    rules: _TypeRules,
    declaration: shapes.PipelineDeclaration,
    region: str | None,
) -> None:
    action_region = action.get("region")
    if not action_region:
        return
    stores = declaration.get("artifactStores")
    if region is not None and action_region != region:
        # AWS: no cross-region Source actions, nor third-party or custom providers.
        if rules.category == SOURCE or rules.owner != action_types.AWS:
            raise errors.InvalidActionDeclarationException(
                f"{where} runs in Region {action_region}, outside the pipeline's Region "
                f"{region}; a {rules.owner} {rules.label} action cannot be cross-region "
                "(Source actions and ThirdParty or Custom providers never are)."
            )
        if stores is None:
            raise errors.InvalidActionDeclarationException(
                f"{where} runs in Region {action_region}, outside the pipeline's Region "
                f"{region}; a cross-region action needs artifactStores with a store in "
                f"{action_region}, not a single artifactStore."
            )
    if stores is not None and action_region not in stores:
        raise errors.InvalidActionDeclarationException(
            f"{where} runs in Region {action_region}, which has no entry in artifactStores "
            f"(it has {', '.join(sorted(stores))})."
        )


def _check_namespaces(stages: Sequence[shapes.StageDeclaration]) -> None:
    owners: dict[str, str] = {}
    for stage in stages:
        for action in stage["actions"]:
            namespace = action.get("namespace")
            if namespace is None:
                continue
            where = _where(stage["name"], action)
            if namespace in owners:
                raise errors.InvalidActionDeclarationException(
                    f"{_cap(where)} uses namespace '{namespace}', which "
                    f"{owners[namespace]} already uses; "
                    "namespaces must be unique in a pipeline."
                )
            owners[namespace] = where


# -- artifacts ----------------------------------------------------------------------------
def _check_artifact_flow(stages: Sequence[shapes.StageDeclaration]) -> None:
    producers = _artifact_producers(stages)
    available: set[str] = set()
    for stage in stages:
        ordered = sorted(stage["actions"], key=_run_order)
        # Actions sharing a runOrder run side by side: none sees the others' outputs.
        for _, group in itertools.groupby(ordered, key=_run_order):
            batch = list(group)
            for action in batch:
                _check_inputs(stage["name"], action, available, producers)
            for action in batch:
                available.update(out["name"] for out in action.get("outputArtifacts") or [])


def _artifact_producers(stages: Sequence[shapes.StageDeclaration]) -> dict[str, str]:
    """Each output artifact's producer, checking that no two actions produce one name."""
    producers: dict[str, str] = {}
    for stage in stages:
        for action in stage["actions"]:
            where = _where(stage["name"], action)
            for artifact in action.get("outputArtifacts") or []:
                name = artifact["name"]
                if name in producers:
                    other = producers[name]
                    raise errors.InvalidActionDeclarationException(
                        f"{_cap(where)} declares output artifact '{name}', which "
                        f"{other} also declares; output artifact names "
                        "must be unique in a pipeline."
                    )
                producers[name] = where
    return producers


def _check_inputs(
    stage_name: str,
    action: shapes.ActionDeclaration,
    available: set[str],
    producers: dict[str, str],
) -> None:
    where = _where(stage_name, action)
    for artifact in action.get("inputArtifacts") or []:
        name = artifact["name"]
        if name in available:
            continue
        if name in producers:
            producer = producers[name]
            raise errors.InvalidActionDeclarationException(
                f"{_cap(where)} takes input artifact '{name}', but {producer} produces it no "
                "earlier than this action runs; an input must "
                "come from an earlier stage or a lower runOrder in the same stage."
            )
        raise errors.InvalidActionDeclarationException(
            f"{_cap(where)} takes input artifact '{name}', which no action of the pipeline "
            "produces; an input must be the output artifact of an earlier action."
        )


# -- triggers -----------------------------------------------------------------------------
TRIGGER_SOURCES = (TRIGGER_PROVIDER, "CodeCommit")


def _check_triggers(
    triggers: Sequence[shapes.PipelineTriggerDeclaration],
    stages: Sequence[shapes.StageDeclaration],
) -> None:
    invalid = errors.InvalidStructureException
    # Source actions are all in the first stage by now.
    sources = {action["name"]: action for action in stages[0]["actions"]}
    triggered: set[str] = set()
    for trigger in triggers:
        if trigger["providerType"] != TRIGGER_PROVIDER:
            raise invalid(
                f"Trigger providerType {trigger['providerType']!r} is not supported; the only "
                f"trigger provider is {TRIGGER_PROVIDER}."
            )
        git = trigger["gitConfiguration"]
        name = git["sourceActionName"]
        action = sources.get(name)
        if action is None:
            raise invalid(
                f"A trigger's gitConfiguration.sourceActionName '{name}' names no Source action "
                f"of the pipeline; its Source actions are {', '.join(sorted(sources))}."
            )
        provider = action["actionTypeId"]["provider"]
        # AWS takes triggers on CodeStarSourceConnection sources only, a provider this
        # server cannot run; it honours them on CodeCommit sources instead.
        if provider not in TRIGGER_SOURCES:
            raise invalid(
                f"The trigger on Source action '{name}' cannot be used: triggers apply to "
                f"{' and '.join(TRIGGER_SOURCES)} source actions, and '{name}' uses {provider}."
            )
        if name in triggered:
            raise invalid(
                f"Source action '{name}' has more than one trigger; a source action takes one "
                "trigger configuration."
            )
        triggered.add(name)
        _check_git_filters(name, git)


def _check_git_filters(source_action: str, git: shapes.GitConfiguration) -> None:
    push, pull_requests = git.get("push") or [], git.get("pullRequest") or []
    for member, filters, limit in (
        ("push", push, MAX_PUSH_FILTERS),
        ("pullRequest", pull_requests, MAX_PULL_REQUEST_FILTERS),
    ):
        if len(filters) > limit:
            raise errors.InvalidStructureException(
                f"The trigger on Source action '{source_action}' has {len(filters)} {member} "
                f"filters; it takes at most {limit}."
            )
    for push_filter in push:
        _check_patterns(source_action, "push tags", push_filter.get("tags"))
        _check_patterns(source_action, "push branches", push_filter.get("branches"))
        _check_patterns(source_action, "push filePaths", push_filter.get("filePaths"))
    for pull_filter in pull_requests:
        _check_patterns(source_action, "pullRequest branches", pull_filter.get("branches"))
        _check_patterns(source_action, "pullRequest filePaths", pull_filter.get("filePaths"))


def _check_patterns(
    source_action: str,
    what: str,
    criteria: shapes.GitTagFilterCriteria
    | shapes.GitBranchFilterCriteria
    | shapes.GitFilePathFilterCriteria
    | None,
) -> None:
    criteria = criteria or {}
    for side, patterns in (
        ("includes", criteria.get("includes") or []),
        ("excludes", criteria.get("excludes") or []),
    ):
        if len(patterns) > MAX_FILTER_PATTERNS:
            raise errors.InvalidStructureException(
                f"The trigger on Source action '{source_action}' lists {len(patterns)} {what} "
                f"{side}; a filter lists at most {MAX_FILTER_PATTERNS}."
            )
