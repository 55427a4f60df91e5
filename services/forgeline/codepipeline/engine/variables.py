"""Variable references in an action's configuration, resolved before the action runs.

AWS's variables reference is the spec:
- A reference is ``#{namespace.variable_key}``. The ``codepipeline`` namespace holds the
  execution's own variables (``PipelineExecutionId``); ``variables`` holds the pipeline-level
  variables (V2 pipelines); any other namespace is one an action declared, and holds the
  output variables that action produced.
- An action sees the variables of the actions guaranteed to run before it: those in earlier
  stages and those of a lower runOrder in its own stage. An action without a namespace
  produces no variables anyone can reference. In a rollback execution the earlier stages'
  namespaces are those the target execution's actions produced (its RollbackSeed).
- CodePipeline resolves every reference before it runs the action; one it cannot resolve
  fails the action with "An action in this pipeline failed because one or more variables
  could not be resolved: Action name=...", followed here by the references and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forgeline.codepipeline.engine.plan import V2, ActionPlan
from forgeline.codepipeline.engine.state import SUCCEEDED, ExecutionState

CODEPIPELINE_NAMESPACE = "codepipeline"
PIPELINE_VARIABLES_NAMESPACE = "variables"
EXECUTION_ID_VARIABLE = "PipelineExecutionId"

_REFERENCE = re.compile(r"#\{([^{}]*)\}")

Scopes = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Unresolved:
    reference: str  # as written, ``#{...}`` included
    reason: str


@dataclass(frozen=True)
class Resolution:
    """Values with every reference replaced, and the references that could not be."""

    values: tuple[str, ...]
    unresolved: tuple[Unresolved, ...]


def resolve(values: Sequence[str], scopes: Scopes) -> Resolution:
    """Resolve the references in each of ``values``; an unresolved one stays as written."""
    problems: list[Unresolved] = []

    def substitute(match: re.Match[str]) -> str:
        value, problem = _lookup(match.group(1), scopes)
        if problem is not None:
            if problem not in problems:
                problems.append(problem)
            return match.group(0)
        return value

    resolved = tuple(_REFERENCE.sub(substitute, value) for value in values)
    return Resolution(resolved, tuple(problems))


def _lookup(reference: str, scopes: Scopes) -> tuple[str, Unresolved | None]:
    written = f"#{{{reference}}}"
    namespace, dot, key = reference.partition(".")
    if not dot or not namespace or not key:
        return "", Unresolved(written, "a reference must be #{namespace.variable}")
    scope = scopes.get(namespace)
    if scope is None:
        return "", Unresolved(written, f"namespace {namespace} not found")
    if key not in scope:
        return "", Unresolved(written, f"variable {key} not found in namespace {namespace}")
    return scope[key], None


def failure_message(action_name: str, unresolved: Sequence[Unresolved]) -> str:
    details = "; ".join(f"Unable to resolve {u.reference}: {u.reason}" for u in unresolved)
    return (
        "An action in this pipeline failed because one or more variables could not be "
        f"resolved: Action name={action_name}. {details}"
    )


def visible_scopes(state: ExecutionState, action: ActionPlan) -> dict[str, dict[str, str]]:
    """The namespaces ``action`` may reference in ``state``: the execution's own, the
    pipeline variables (V2), those a rollback's seed brings and those of the actions that
    ran before it."""
    plan = state.plan
    assert plan is not None
    scopes: dict[str, dict[str, str]] = {}
    if state.rollback is not None:
        for namespace, values in state.rollback.namespace_variables.items():
            scopes[namespace] = dict(values)
    scopes[CODEPIPELINE_NAMESPACE] = {EXECUTION_ID_VARIABLE: state.execution_id}
    if plan.pipeline_type == V2:
        scopes[PIPELINE_VARIABLES_NAMESPACE] = dict(state.variables)
    position = plan.stage_index(action.stage)
    for stage_state in state.stages:
        stage_plan = plan.stage(stage_state.name)
        assert stage_plan is not None
        index = plan.stage_index(stage_state.name)
        for action_state in stage_state.actions:
            producer = stage_plan.action(action_state.name)
            if producer is None or producer.namespace is None:
                continue
            earlier = index < position or (
                index == position and producer.run_order < action.run_order
            )
            if earlier and action_state.status == SUCCEEDED:
                scopes[producer.namespace] = dict(action_state.output_variables)
    return scopes
