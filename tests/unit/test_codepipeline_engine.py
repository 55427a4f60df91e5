"""The pipeline execution machine, driven through the in-memory world.

The world keeps every execution's state (and the lanes' occupancy) through its JSON document
after every transition and fails the test if it does not survive, so every test here also
proves the round trip at each step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from forgeline.codepipeline.engine.effects import (
    ActionChanged,
    CancelAction,
    ExecutionChanged,
    Finished,
    ReleaseStage,
    RunAction,
    SetTimer,
    StageChanged,
    WantStage,
)
from forgeline.codepipeline.engine.events import (
    ActionFailed,
    ActionSucceeded,
    RetryRequested,
    StageGranted,
    Start,
    StopRequested,
    Superseded,
    Tick,
)
from forgeline.codepipeline.engine.fake import EPOCH, Fail, Hang, InMemoryPipelineWorld, Succeed
from forgeline.codepipeline.engine.machine import (
    action_execution_id,
    advance,
    can_retry,
    can_stop,
    is_duplicate_stop,
)
from forgeline.codepipeline.engine.plan import PipelinePlan, plan_from_declaration
from forgeline.codepipeline.engine.state import ExecutionState, new_execution

UNRESOLVED = "An action in this pipeline failed because one or more variables could not be resolved"


# ------------------------------------------------------------ declarations


def action(
    name: str,
    category: str = "Build",
    provider: str = "CodeBuild",
    *,
    run_order: int = 1,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    namespace: str | None = None,
    configuration: Mapping[str, str] | None = None,
    owner: str = "AWS",
    **extra: Any,
) -> dict[str, Any]:
    declaration: dict[str, Any] = {
        "name": name,
        "actionTypeId": {
            "category": category,
            "owner": owner,
            "provider": provider,
            "version": "1",
        },
        "runOrder": run_order,
        "configuration": dict(configuration or {"ProjectName": name.lower()}),
        "inputArtifacts": [{"name": artifact} for artifact in inputs],
        "outputArtifacts": [{"name": artifact} for artifact in outputs],
        **extra,
    }
    if namespace is not None:
        declaration["namespace"] = namespace
    return declaration


def source(name: str = "Source", output: str = "SourceArtifact") -> dict[str, Any]:
    return action(
        name,
        "Source",
        "CodeCommit",
        outputs=(output,),
        namespace="SourceVariables",
        configuration={"RepositoryName": "repo", "BranchName": "main"},
    )


def stage(name: str, *actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "actions": list(actions), **extra}


def pipeline(
    *stages: dict[str, Any],
    mode: str | None = None,
    pipeline_type: str = "V2",
    variables: list[dict[str, str]] | None = None,
) -> PipelinePlan:
    declaration: dict[str, Any] = {
        "name": "my-pipeline",
        "roleArn": "arn:aws:iam::123456789012:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": list(stages),
        "pipelineType": pipeline_type,
        "variables": variables or [],
    }
    if mode is not None:
        declaration["executionMode"] = mode
    return plan_from_declaration(declaration, version=1)


def three_stages(mode: str | None = None) -> PipelinePlan:
    return pipeline(
        stage("Source", source()),
        stage("Build", action("Build", inputs=("SourceArtifact",), outputs=("BuildArtifact",))),
        stage(
            "Deploy",
            action(
                "Deploy",
                "Deploy",
                "S3",
                inputs=("BuildArtifact",),
                configuration={"BucketName": "site", "Extract": "true"},
            ),
        ),
        mode=mode,
    )


def statuses(world: InMemoryPipelineWorld, execution: str) -> dict[str, str | None]:
    return {s.name: s.status for s in world.state(execution).stages}


# ------------------------------------------------------------ stages and actions


def test_stages_run_in_order_and_the_execution_succeeds():
    world = InMemoryPipelineWorld(three_stages())
    execution = world.start()
    world.settle()

    state = world.state(execution)
    assert state.status == "Succeeded"
    assert world.run_order() == ["Source", "Build", "Deploy"]
    assert statuses(world, execution) == {
        "Source": "Succeeded",
        "Build": "Succeeded",
        "Deploy": "Succeeded",
    }
    lane_effects = [
        e for _, e in world.effects if isinstance(e, WantStage | ReleaseStage | Finished)
    ]
    assert lane_effects == [
        WantStage("Source"),
        ReleaseStage("Source"),
        WantStage("Build"),
        ReleaseStage("Build"),
        WantStage("Deploy"),
        ReleaseStage("Deploy"),
        Finished("Succeeded", None),
    ]
    assert world.statuses[execution] == ["InProgress", "Succeeded"]
    assert state.start_time == EPOCH and state.end_time is not None
    assert state.timers == () and state.waiting_for is None


def test_the_execution_waits_for_its_stage_to_be_granted():
    state = new_execution("e-1")
    transition = advance(state, Start(three_stages(), nonce="n"), EPOCH)

    assert transition.state.status == "InProgress"
    assert transition.state.waiting_for == "Source"
    assert transition.effects == (ExecutionChanged("InProgress"), WantStage("Source"))
    assert all(s.status is None for s in transition.state.stages)
    # A grant for a stage it does not wait for is handed back.
    unwanted = advance(transition.state, StageGranted("Build"), EPOCH)
    assert unwanted.state == transition.state
    assert unwanted.effects == (ReleaseStage("Build"),)

    granted = advance(transition.state, StageGranted("Source"), EPOCH)
    assert granted.state.waiting_for is None
    assert [type(e) for e in granted.effects] == [StageChanged, ActionChanged, RunAction, SetTimer]


def test_actions_of_one_run_order_start_together_and_the_next_waits_for_all():
    plan = pipeline(
        stage("Source", source()),
        stage(
            "Test",
            action("Unit", "Test", inputs=("SourceArtifact",)),
            action("Lint", "Test", inputs=("SourceArtifact",)),
            action("Package", run_order=2, inputs=("SourceArtifact",)),
        ),
    )
    world = InMemoryPipelineWorld(plan)
    world.hang("Lint")
    execution = world.start()
    world.settle()

    started_together = [
        [e.action.name for e in t.effects if isinstance(e, RunAction)]
        for _, _, t in world.transitions
    ]
    assert ["Unit", "Lint"] in started_together
    assert world.peak_running == 2
    assert world.runs_of("Package") == []  # Lint still runs
    assert world.action(execution, "Test", "Package").status is None

    world.release(execution, "Lint")
    world.settle()
    assert world.run_order() == ["Source", "Unit", "Lint", "Package"]
    assert world.state(execution).status == "Succeeded"


def test_a_failure_waits_for_running_siblings_then_fails_the_stage_and_the_execution():
    plan = pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("Compile", inputs=("SourceArtifact",)),
            action("Slow", inputs=("SourceArtifact",)),
            action("Publish", run_order=2, inputs=("SourceArtifact",)),
        ),
        stage("Deploy", action("Deploy", "Deploy", "S3", inputs=("SourceArtifact",))),
    )
    world = InMemoryPipelineWorld(plan)
    world.fail("Compile", "exit status 2")
    world.hang("Slow")
    execution = world.start()
    world.settle()

    # Compile failed, Slow still runs: the stage and the execution wait for it.
    assert world.action(execution, "Build", "Compile").status == "Failed"
    assert world.stage(execution, "Build").status == "InProgress"
    assert world.state(execution).status == "InProgress"

    world.release(execution, "Slow")
    world.settle()
    state = world.state(execution)
    assert state.status == "Failed"
    assert statuses(world, execution) == {"Source": "Succeeded", "Build": "Failed", "Deploy": None}
    assert world.action(execution, "Build", "Slow").status == "Succeeded"
    assert world.action(execution, "Build", "Publish").status is None
    assert world.runs_of("Publish") == [] and world.runs_of("Deploy") == []
    assert state.status_summary == "Action Compile in stage Build failed: exit status 2"
    assert world.finished[execution] == Finished("Failed", state.status_summary)
    error = world.action(execution, "Build", "Compile").error
    assert error is not None and (error.code, error.message) == ("JobFailed", "exit status 2")
    # A failure releases the stage's lane.
    assert (execution, ReleaseStage("Build")) in world.effects


def test_output_artifacts_reach_later_actions_inputs():
    world = InMemoryPipelineWorld(three_stages())
    execution = world.start()
    world.settle()

    (build,) = world.runs_of("Build")
    (deploy,) = world.runs_of("Deploy")
    source_artifact = build.input_artifacts["SourceArtifact"]
    assert source_artifact.location == f"{execution}/Source/Source/SourceArtifact"
    assert deploy.input_artifacts["BuildArtifact"].location == (
        f"{execution}/Build/Build/BuildArtifact"
    )
    assert world.action(execution, "Build", "Build").input_artifacts == (source_artifact,)
    assert [a.name for a in world.action(execution, "Build", "Build").output_artifacts] == [
        "BuildArtifact"
    ]


def test_source_revisions_are_recorded_and_start_overrides_reach_the_source_action():
    world = InMemoryPipelineWorld(three_stages())
    revision = {"revisionId": "abc123", "revisionSummary": "Fix the build"}
    world.script("Source", Succeed(revision=revision))
    override = {"revisionType": "COMMIT_ID", "revisionValue": "abc123"}
    execution = world.start(source_revisions={"Source": override})
    world.settle()

    assert world.runs_of("Source")[0].source_revision == override
    assert world.runs_of("Build")[0].source_revision is None
    assert world.state(execution).artifact_revisions == {"SourceArtifact": revision}
    assert world.runs_of("Build")[0].input_artifacts["SourceArtifact"].revision == "abc123"


# ------------------------------------------------------------ variables


def variables_plan(configuration: Mapping[str, str], **extra: Any) -> PipelinePlan:
    return pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("Build", inputs=("SourceArtifact",), configuration=configuration, **extra),
        ),
        variables=[{"name": "env", "defaultValue": "staging"}, {"name": "region"}],
        pipeline_type=extra.pop("pipeline_type", "V2"),
    )


def test_variables_resolve_from_namespaces_pipeline_variables_and_the_execution_id():
    plan = variables_plan(
        {
            "ProjectName": "app-#{variables.env}",
            "EnvironmentVariables": "#{SourceVariables.CommitId}@#{variables.region}",
            "PrimarySource": "#{codepipeline.PipelineExecutionId}",
        }
    )
    world = InMemoryPipelineWorld(plan)
    world.script("Source", Succeed(output_variables={"CommitId": "abc123"}))
    execution = world.start(variables={"region": "eu-west-1"})
    world.settle()

    expected = {
        "ProjectName": "app-staging",
        "EnvironmentVariables": "abc123@eu-west-1",
        "PrimarySource": execution,
    }
    (build,) = world.runs_of("Build")
    assert build.resolved_configuration == expected
    assert world.action(execution, "Build", "Build").resolved_configuration == expected
    assert build.namespace_variables["SourceVariables"] == {"CommitId": "abc123"}
    assert world.state(execution).variables == {"env": "staging", "region": "eu-west-1"}
    assert world.state(execution).status == "Succeeded"


def test_the_start_overrides_a_default_and_commands_and_environment_variables_resolve():
    plan = variables_plan(
        {},
        commands=["echo #{variables.env}", "make #{SourceVariables.CommitId}"],
        environmentVariables=[{"name": "STAGE", "value": "#{variables.env}", "type": "PLAINTEXT"}],
    )
    world = InMemoryPipelineWorld(plan)
    world.script("Source", Succeed(output_variables={"CommitId": "c0ffee"}))
    world.start(variables={"env": "prod", "region": "x"})
    world.settle()

    (build,) = world.runs_of("Build")
    assert build.resolved_commands == ("echo prod", "make c0ffee")
    assert [(v.name, v.value) for v in build.resolved_environment_variables] == [("STAGE", "prod")]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("#{BuildVariables.Id}", "Unable to resolve #{BuildVariables.Id}: namespace BuildVariables not found"),
        ("#{SourceVariables.Nope}", "Unable to resolve #{SourceVariables.Nope}: variable Nope not found in namespace SourceVariables"),
        ("#{variables.missing}", "Unable to resolve #{variables.missing}: variable missing not found in namespace variables"),
        ("#{nodot}", "Unable to resolve #{nodot}: a reference must be #{namespace.variable}"),
    ],
)  # fmt: skip
def test_an_unresolvable_reference_fails_the_action_without_running_it(value: str, reason: str):
    world = InMemoryPipelineWorld(variables_plan({"ProjectName": value}))
    execution = world.start(variables={"region": "r"})
    world.settle()

    assert world.runs_of("Build") == []
    build = world.action(execution, "Build", "Build")
    assert build.status == "Failed" and build.action_execution_id is not None
    assert build.error is not None
    assert build.error.code == "ConfigurationError"
    assert build.error.message.startswith(f"{UNRESOLVED}: Action name=Build.")
    assert reason in build.error.message
    assert world.state(execution).status == "Failed"
    assert (execution, "Build", "Build", "Failed") in world.action_changes


def test_a_same_run_order_sibling_and_a_v1_pipeline_offer_no_variables():
    plan = pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("Producer", namespace="Made", inputs=("SourceArtifact",)),
            action("Consumer", configuration={"X": "#{Made.Value}"}, inputs=("SourceArtifact",)),
            action("Later", run_order=2, configuration={"X": "#{Made.Value}"}),
        ),
    )
    world = InMemoryPipelineWorld(plan)
    world.script("Producer", Succeed(output_variables={"Value": "v"}))
    execution = world.start()
    world.settle()
    consumer = world.action(execution, "Build", "Consumer")
    assert consumer.error is not None and "namespace Made not found" in consumer.error.message
    assert world.runs_of("Later") == []  # the runOrder failed

    v1 = variables_plan({"ProjectName": "#{variables.env}"}, pipeline_type="V1")
    world = InMemoryPipelineWorld(v1)
    execution = world.start(variables={"env": "ignored"})
    world.settle()
    build = world.action(execution, "Build", "Build")
    assert build.error is not None and "namespace variables not found" in build.error.message
    assert world.state(execution).variables == {}


def test_a_later_run_order_sees_an_earlier_ones_namespace():
    plan = pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("Producer", namespace="Made", inputs=("SourceArtifact",)),
            action("Later", run_order=2, configuration={"X": "#{Made.Value}"}),
        ),
    )
    world = InMemoryPipelineWorld(plan)
    world.script("Producer", Succeed(output_variables={"Value": "v"}))
    world.start()
    world.settle()
    assert world.runs_of("Later")[0].resolved_configuration == {"X": "v"}


# ------------------------------------------------------------ timeouts


def test_an_action_past_its_providers_timeout_fails_and_its_work_is_cancelled():
    world = InMemoryPipelineWorld(three_stages())
    world.hang("Build")
    execution = world.start()
    world.run()

    (build_run,) = world.runs_of("Build")
    started = world.action(execution, "Build", "Build").start_time
    assert started is not None
    assert build_run.deadline == started + timedelta(hours=8)  # CodeBuild: 8 hours
    assert world.now == started + timedelta(hours=8)
    build = world.action(execution, "Build", "Build")
    assert build.status == "Failed" and build.error is not None
    assert build.error.code == "TimedOut"
    assert build.error.message == "The action did not complete within its timeout of 8 hours."
    assert (execution, CancelAction(build_run.action_execution_id)) in world.effects
    assert world.state(execution).status == "Failed"


def test_an_approval_expires_after_seven_days_or_its_declared_timeout():
    approval = action("Approve", "Approval", "Manual", configuration={})
    world = InMemoryPipelineWorld(pipeline(stage("Source", source()), stage("Gate", approval)))
    world.hang("Approve")
    execution = world.start()
    world.run()
    gate = world.action(execution, "Gate", "Approve")
    assert gate.error is not None
    assert gate.error.message == (
        "The approval request expired: no one approved or rejected it within 7 days, so it failed."
    )
    assert gate.last_update_time == gate.start_time + timedelta(days=7)  # type: ignore[operator]

    short = action("Approve", "Approval", "Manual", configuration={}, timeoutInMinutes=15)
    world = InMemoryPipelineWorld(pipeline(stage("Source", source()), stage("Gate", short)))
    world.hang("Approve")
    execution = world.start()
    world.run()
    gate = world.action(execution, "Gate", "Approve")
    assert gate.error is not None and "within 15 minutes" in gate.error.message


def test_an_approval_answered_in_time_carries_on():
    approval = action("Approve", "Approval", "Manual", configuration={})
    plan = pipeline(
        stage("Source", source()), stage("Gate", approval), stage("Ship", action("Ship"))
    )
    world = InMemoryPipelineWorld(plan)
    world.hang("Approve")
    execution = world.start()
    world.settle()
    world.advance_clock(3600)
    world.release(execution, "Approve", Succeed(summary="Looks good"))
    world.settle()
    assert world.state(execution).status == "Succeeded"
    assert world.action(execution, "Gate", "Approve").summary == "Looks good"
    # The cleared timer no longer fires.
    assert world.state(execution).timers == ()


def test_a_tick_before_the_deadline_changes_nothing():
    world = InMemoryPipelineWorld(three_stages())
    world.hang("Build")
    execution = world.start()
    world.settle()
    before = world.state(execution)
    transition = advance(before, Tick(), world.now + timedelta(hours=1))
    assert transition.state == before and transition.effects == ()


# ------------------------------------------------------------ stops


def stop_plan() -> PipelinePlan:
    return pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("First", inputs=("SourceArtifact",)),
            action("Second", run_order=2, inputs=("SourceArtifact",)),
        ),
        stage("Deploy", action("Deploy", "Deploy", "S3", inputs=("SourceArtifact",))),
    )


def test_stop_and_wait_lets_running_actions_finish_and_starts_nothing_new():
    world = InMemoryPipelineWorld(stop_plan())
    world.hang("First")
    execution = world.start()
    world.settle()

    world.stop(execution, reason="Release freeze")
    assert world.state(execution).status == "Stopping"
    assert world.stage(execution, "Build").status == "Stopping"
    assert world.cancelled == []
    assert not is_duplicate_stop(world.state(execution), abandon=True)
    assert is_duplicate_stop(world.state(execution), abandon=False)

    world.release(execution, "First")
    world.settle()
    state = world.state(execution)
    assert state.status == "Stopped"
    assert state.status_summary == "Release freeze"
    assert world.action(execution, "Build", "First").status == "Succeeded"
    assert world.runs_of("Second") == [] and world.runs_of("Deploy") == []
    assert world.stage(execution, "Build").status == "Stopped"
    assert world.statuses[execution] == ["InProgress", "Stopping", "Stopped"]
    assert world.finished[execution] == Finished("Stopped", "Release freeze")


def test_stop_and_abandon_abandons_running_actions_at_once():
    world = InMemoryPipelineWorld(stop_plan())
    world.hang("First")
    execution = world.start()
    world.settle()
    (first,) = world.runs_of("First")

    world.stop(execution, abandon=True, reason="Wrong commit")
    state = world.state(execution)
    assert state.status == "Stopped"
    assert world.action(execution, "Build", "First").status == "Abandoned"
    assert world.stage(execution, "Build").status == "Stopped"
    assert world.cancelled == [first.action_execution_id]
    assert (execution, ReleaseStage("Build")) in world.effects

    # The abandoned action's late result is ignored.
    late = advance(state, ActionSucceeded(first.action_execution_id), world.now)
    assert late.state == state and late.effects == ()


def test_stop_and_abandon_after_stop_and_wait():
    world = InMemoryPipelineWorld(stop_plan())
    world.hang("First")
    execution = world.start()
    world.settle()
    world.stop(execution)
    world.stop(execution)  # a repeated stop and wait changes nothing
    assert world.statuses[execution] == ["InProgress", "Stopping"]
    world.stop(execution, abandon=True)
    assert world.state(execution).status == "Stopped"
    assert world.action(execution, "Build", "First").status == "Abandoned"


def test_a_finished_execution_cannot_be_stopped():
    world = InMemoryPipelineWorld(three_stages())
    execution = world.start()
    world.settle()
    state = world.state(execution)
    assert not can_stop(state)
    transition = advance(state, StopRequested(abandon=True, reason="late"), world.now)
    assert transition.state == state and transition.effects == ()
    assert not can_stop(new_execution("e-new"))


def test_a_stop_while_waiting_for_a_stage_stops_at_once():
    world = InMemoryPipelineWorld(three_stages(mode="QUEUED"))
    world.hang("Build")
    first = world.start()
    second = world.start()
    world.settle()
    assert world.state(second).waiting_for == "Build"
    assert world.occupancy.waiters("Build") == (second,)

    world.stop(second)
    assert world.state(second).status == "Stopped"
    assert world.stage(second, "Build").status is None
    assert world.occupancy.waiters("Build") == ()
    assert world.state(first).status == "InProgress"


# ------------------------------------------------------------ retries


def retry_plan(**stage_extra: Any) -> PipelinePlan:
    return pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action("Flaky", inputs=("SourceArtifact",)),
            action("Steady", inputs=("SourceArtifact",)),
            action("Package", run_order=2, inputs=("SourceArtifact",)),
            **stage_extra,
        ),
        stage("Deploy", action("Deploy", "Deploy", "S3", inputs=("SourceArtifact",))),
    )


def test_retry_failed_actions_reruns_only_those_with_new_attempt_ids():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    assert world.state(execution).status == "Failed"
    assert can_retry(world.state(execution), "Build") is None
    (first_try,) = world.runs_of("Flaky")

    world.retry(execution, "Build", "FAILED_ACTIONS")
    assert world.state(execution).status == "InProgress"
    world.settle()

    state = world.state(execution)
    assert state.status == "Succeeded" and state.status_summary is None
    assert [len(world.runs_of(name)) for name in ("Flaky", "Steady", "Package")] == [2, 1, 1]
    second_try = world.runs_of("Flaky")[1]
    assert second_try.attempt == 2
    assert second_try.action_execution_id != first_try.action_execution_id
    assert second_try.action_execution_id == action_execution_id(
        execution, "nonce-1", "Build", "Flaky", 2
    )
    build = world.stage(execution, "Build")
    assert build.retry_metadata() == {
        "latestRetryTrigger": "ManualStageRetry",
        "manualStageRetryAttempt": 1,
    }
    assert world.statuses[execution] == ["InProgress", "Failed", "InProgress", "Succeeded"]


def test_retry_all_actions_reruns_every_action_of_the_stage():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    before = {a.name: a.action_execution_id for a in world.stage(execution, "Build").actions}

    world.retry(execution, "Build", "ALL_ACTIONS")
    world.settle()

    assert world.state(execution).status == "Succeeded"
    assert [len(world.runs_of(name)) for name in ("Flaky", "Steady", "Package")] == [2, 2, 1]
    after = {a.name: a.action_execution_id for a in world.stage(execution, "Build").actions}
    assert after["Flaky"] != before["Flaky"] and after["Steady"] != before["Steady"]
    assert world.action(execution, "Build", "Steady").attempt == 2


def test_a_retried_stage_asks_for_its_lane_again():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    transition = advance(
        world.state(execution), RetryRequested("Build", "FAILED_ACTIONS"), world.now
    )
    assert transition.state.waiting_for == "Build"
    assert transition.effects == (ExecutionChanged("InProgress"), WantStage("Build"))


def test_a_retry_makes_the_actions_ready_again_only_once_back_in_the_stage():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    waiting = advance(
        world.state(execution), RetryRequested("Build", "FAILED_ACTIONS"), world.now
    ).state
    build = waiting.stage("Build")
    assert build is not None and build.pending_retry_mode == "FAILED_ACTIONS"
    assert build.action("Flaky").status == "Failed"

    # Stopped while it waited: the failure stays on record, and a grant that comes too late
    # is handed back.
    stopped = advance(waiting, StopRequested(), world.now).state
    assert stopped.status == "Stopped"
    assert stopped.stage("Build").action("Flaky").status == "Failed"  # type: ignore[union-attr]
    late = advance(stopped, StageGranted("Build"), world.now)
    assert late.state == stopped and late.effects == (ReleaseStage("Build"),)


def test_a_stopped_stage_can_be_retried_and_its_abandoned_actions_rerun():
    world = InMemoryPipelineWorld(stop_plan())
    world.hang("First")
    execution = world.start()
    world.settle()
    world.stop(execution, abandon=True)
    world.retry(execution, "Build", "FAILED_ACTIONS")
    world.settle()
    assert world.state(execution).status == "Succeeded"
    assert [run.attempt for run in world.runs_of("First")] == [1, 2]


def test_what_cannot_be_retried_says_why():
    world = InMemoryPipelineWorld(retry_plan())
    world.hang("Flaky")
    execution = world.start()
    world.settle()
    running = world.state(execution)
    assert "not Failed or Stopped" in (can_retry(running, "Build") or "")

    world.release(execution, "Flaky", Fail())
    world.settle()
    failed = world.state(execution)
    assert "only the stage that failed" in (can_retry(failed, "Source") or "")
    assert "not reached" in (can_retry(failed, "Deploy") or "")
    assert "no such stage" in (can_retry(failed, "Nope") or "")
    # The machine refuses what can_retry refuses.
    refused = advance(failed, RetryRequested("Source", "ALL_ACTIONS"), world.now)
    assert refused.state == failed and refused.effects == ()
    unknown_mode = advance(failed, RetryRequested("Build", "SOME_ACTIONS"), world.now)
    assert unknown_mode.state == failed


def test_on_failure_retry_retries_the_stage_once_by_itself():
    world = InMemoryPipelineWorld(
        retry_plan(
            onFailure={"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}}
        )
    )
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    assert world.state(execution).status == "Succeeded"
    assert [len(world.runs_of(name)) for name in ("Flaky", "Steady")] == [2, 2]
    assert world.stage(execution, "Build").retry_metadata() == {
        "latestRetryTrigger": "AutomatedStageRetry",
        "autoStageRetryAttempt": 1,
    }

    world = InMemoryPipelineWorld(retry_plan(onFailure={"result": "RETRY"}))
    world.fail("Flaky", times=2)
    execution = world.start()
    world.settle()
    assert world.state(execution).status == "Failed"
    assert [len(world.runs_of(name)) for name in ("Flaky", "Steady")] == [2, 1]


def test_on_failure_rollback_asks_for_a_rollback():
    world = InMemoryPipelineWorld(retry_plan(onFailure={"result": "ROLLBACK"}))
    world.fail("Flaky")
    execution = world.start()
    world.settle()
    assert world.state(execution).status == "Failed"
    assert world.rollbacks == [(execution, "Build")]


# ------------------------------------------------------------ late and duplicate results


def test_late_duplicate_and_unknown_results_change_nothing():
    world = InMemoryPipelineWorld(three_stages())
    world.hang("Build")
    execution = world.start()
    world.settle()
    (build,) = world.runs_of("Build")
    (source_run,) = world.runs_of("Source")
    state = world.state(execution)

    for event in (
        ActionSucceeded(source_run.action_execution_id),  # already succeeded
        ActionFailed(source_run.action_execution_id, "late"),
        ActionSucceeded("00000000-0000-0000-0000-000000000000"),
        StageGranted("Build"),  # already in it
        Start(three_stages()),
    ):
        transition = advance(state, event, world.now)
        assert transition.state == state and transition.effects == (), event

    done = advance(state, ActionSucceeded(build.action_execution_id), world.now).state
    again = advance(done, ActionSucceeded(build.action_execution_id), world.now)
    assert again.state == done and again.effects == ()


def test_a_result_for_an_earlier_attempt_is_ignored_after_a_retry():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky")
    world.hang("Flaky")
    execution = world.start()
    world.settle()
    (first_try,) = world.runs_of("Flaky")
    world.retry(execution, "Build", "FAILED_ACTIONS")
    world.settle()
    state = world.state(execution)
    stale = advance(state, ActionSucceeded(first_try.action_execution_id), world.now)
    assert stale.state == state and stale.effects == ()


# ------------------------------------------------------------ execution modes


def test_superseded_a_newer_execution_overtakes_a_waiting_one_never_a_running_one():
    world = InMemoryPipelineWorld(three_stages())  # SUPERSEDED by default
    first = world.start()
    world.script("Build", Hang(), execution_id=first)
    world.settle()
    assert world.stage(first, "Build").status == "InProgress"

    second = world.start()
    world.settle()
    assert world.state(second).waiting_for == "Build"
    assert world.occupancy.waiters("Build") == (second,)

    third = world.start()
    world.settle()
    assert world.state(second).status == "Superseded"
    assert world.state(second).status_summary == f"Superseded by pipeline execution {third}."
    assert world.superseded == [second]
    assert world.state(first).status == "InProgress"  # running: never interrupted
    assert world.stage(first, "Build").status == "InProgress"
    assert world.state(third).waiting_for == "Build"

    world.release(first, "Build")
    world.settle()
    assert [world.state(e).status for e in (first, second, third)] == [
        "Succeeded",
        "Superseded",
        "Succeeded",
    ]
    assert [e for e, s in world.grants if s == "Build"] == [first, third]
    assert world.runs_of("Build", second) == []


def test_superseded_executions_queue_one_at_a_time_through_the_first_stage():
    world = InMemoryPipelineWorld(three_stages())
    world.hang("Source")
    first = world.start()
    second = world.start()
    third = world.start()
    world.settle()
    assert world.superseded == [second]
    assert world.occupancy.holder("Source") == first
    assert world.occupancy.waiters("Source") == (third,)


def test_queued_executions_enter_each_stage_first_come_first_served():
    world = InMemoryPipelineWorld(three_stages(mode="QUEUED"))
    first = world.start()
    world.script("Build", Hang(), execution_id=first)
    world.settle()
    later = [world.start() for _ in range(3)]
    world.settle()
    assert world.occupancy.waiters("Build") == tuple(later)
    assert all(world.state(e).status == "InProgress" for e in later)

    world.release(first, "Build")
    world.settle()
    assert world.superseded == []
    assert all(world.state(e).status == "Succeeded" for e in [first, *later])
    assert [e for e, s in world.grants if s == "Build"] == [first, *later]
    assert [e for e, s in world.grants if s == "Deploy"] == [first, *later]


def test_parallel_executions_run_the_same_stage_at_once():
    world = InMemoryPipelineWorld(three_stages(mode="PARALLEL"))
    world.hang("Build", times=2)
    first = world.start()
    second = world.start()
    world.settle()
    assert world.stage(first, "Build").status == "InProgress"
    assert world.stage(second, "Build").status == "InProgress"
    assert world.peak_running == 2
    assert world.occupancy.holders == {}

    world.release(second, "Build")
    world.release(first, "Build")
    world.settle()
    assert world.state(first).status == world.state(second).status == "Succeeded"
    assert world.finished[second] is not None


def test_a_disabled_transition_holds_executions_until_it_is_enabled():
    world = InMemoryPipelineWorld(three_stages(mode="QUEUED"))
    world.disable("Deploy")
    first = world.start()
    second = world.start()
    world.settle()
    for execution in (first, second):
        assert world.state(execution).status == "InProgress"
        assert world.state(execution).waiting_for == "Deploy"
    assert world.occupancy.waiters("Deploy") == (first, second)
    assert world.runs_of("Deploy") == []

    world.enable("Deploy")
    world.settle()
    assert world.state(first).status == world.state(second).status == "Succeeded"
    assert [e for e, s in world.grants if s == "Deploy"] == [first, second]


def test_a_disabled_transition_in_superseded_mode_lets_only_the_newest_in():
    world = InMemoryPipelineWorld(three_stages())
    world.disable("Deploy")
    first = world.start()
    world.settle()
    second = world.start()
    world.settle()
    assert world.state(first).status == "Superseded"
    world.enable("Deploy")
    world.settle()
    assert world.state(second).status == "Succeeded"
    assert world.runs_of("Deploy", first) == []


def test_a_superseded_event_for_a_running_execution_abandons_its_actions():
    world = InMemoryPipelineWorld(three_stages())
    world.hang("Build")
    execution = world.start()
    world.settle()
    world.apply(execution, Superseded())
    assert world.state(execution).status == "Superseded"
    assert world.action(execution, "Build", "Build").status == "Abandoned"
    assert world.runs_of("Build")[0].action_execution_id in world.cancelled
    assert world.occupancy.holder("Build") is None


# ------------------------------------------------------------ the document


def test_the_state_round_trips_through_its_json_document():
    world = InMemoryPipelineWorld(retry_plan())
    world.script(
        "Source",
        Succeed(
            output_variables={"CommitId": "abc"},
            summary="Merge branch",
            external_url="https://example.invalid/commit/abc",
            revision={"revisionId": "abc", "revisionSummary": "Merge branch"},
        ),
    )
    world.fail("Flaky", "boom")
    execution = world.start(
        variables={}, trigger={"triggerType": "Webhook", "triggerDetail": "arn:hook"}
    )
    world.settle()
    world.retry(execution, "Build", "FAILED_ACTIONS")
    world.hang("Deploy")
    world.settle()

    state = world.state(execution)
    assert state.timers and state.trigger["triggerType"] == "Webhook"
    document = json.loads(json.dumps(state.to_document()))
    assert ExecutionState.from_document(document) == state
    assert document["version"] == 1

    with pytest.raises(ValueError, match="version"):
        ExecutionState.from_document({**document, "version": 99})


def test_the_action_state_renders_as_the_models_action_execution():
    world = InMemoryPipelineWorld(retry_plan())
    world.fail("Flaky", "boom")
    execution = world.start()
    world.settle()
    shape = world.action(execution, "Build", "Flaky").to_action_execution()
    assert shape["status"] == "Failed"
    assert shape["errorDetails"] == {"code": "JobFailed", "message": "boom"}
    assert set(shape) == {"actionExecutionId", "status", "lastStatusChange", "errorDetails"}
    assert world.action(execution, "Build", "Package").to_action_execution() == {}
