"""Rollback executions: one stage run again with what an earlier execution had when it ran it.

Like the rest of the engine's tests, these drive the in-memory world, which keeps every
state through its JSON document after every transition.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from forgeline.codepipeline.engine.effects import (
    ExecutionChanged,
    Finished,
    ReleaseStage,
    StartRollback,
    WantStage,
)
from forgeline.codepipeline.engine.events import Start
from forgeline.codepipeline.engine.fake import EPOCH, InMemoryPipelineWorld, Succeed
from forgeline.codepipeline.engine.machine import advance, rollback_problem, rollback_seed
from forgeline.codepipeline.engine.plan import PipelinePlan
from forgeline.codepipeline.engine.state import (
    ArtifactRef,
    ExecutionState,
    RollbackSeed,
    new_execution,
)
from tests.unit.test_codepipeline_engine import action, pipeline, source, stage

BUILD_CONFIGURATION = {
    "ProjectName": "app-#{variables.env}",
    "EnvironmentVariables": "#{SourceVariables.CommitId}@#{variables.region}",
    "PrimarySource": "#{codepipeline.PipelineExecutionId}",
}


def rollback_plan(**build_stage: Any) -> PipelinePlan:
    return pipeline(
        stage("Source", source()),
        stage(
            "Build",
            action(
                "Build",
                inputs=("SourceArtifact",),
                outputs=("BuildArtifact",),
                namespace="BuildVariables",
                configuration=BUILD_CONFIGURATION,
            ),
            **build_stage,
        ),
        stage(
            "Deploy",
            action(
                "Deploy",
                "Deploy",
                "S3",
                inputs=("BuildArtifact",),
                configuration={"BucketName": "site", "Key": "#{BuildVariables.Image}"},
            ),
        ),
        variables=[{"name": "env", "defaultValue": "staging"}, {"name": "region"}],
    )


def run_standard(world: InMemoryPipelineWorld, commit: str, region: str) -> str:
    """A standard execution that succeeds throughout, its source at ``commit``."""
    world.script("Source", Succeed(output_variables={"CommitId": commit}))
    world.script("Build", Succeed(output_variables={"Image": f"app:{commit}"}))
    execution = world.start(variables={"region": region})
    world.settle()
    assert world.state(execution).status == "Succeeded"
    return execution


def statuses(world: InMemoryPipelineWorld, execution: str) -> dict[str, str | None]:
    return {s.name: s.status for s in world.state(execution).stages}


# ------------------------------------------------------------ the seed


def test_the_seed_holds_what_the_target_had_before_the_stage():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")

    seed = rollback_seed(world.state(target), "Build")

    assert seed.stage == "Build" and seed.target_execution_id == target
    source_artifact = world.action(target, "Source", "Source").output_artifacts[0]
    assert seed.artifacts == {"SourceArtifact": source_artifact}
    # Only the earlier stages' namespaces: Build's own is what the rollback makes anew.
    assert seed.namespace_variables == {"SourceVariables": {"CommitId": "abc123"}}
    assert seed.variables == {"env": "staging", "region": "eu-west-1"}

    later = rollback_seed(world.state(target), "Deploy")
    assert set(later.artifacts) == {"SourceArtifact", "BuildArtifact"}
    assert later.namespace_variables == {
        "SourceVariables": {"CommitId": "abc123"},
        "BuildVariables": {"Image": "app:abc123"},
    }


def test_the_seed_survives_its_json_document():
    seed = RollbackSeed(
        stage="Build",
        target_execution_id="e-1",
        artifacts={"SourceArtifact": ArtifactRef("SourceArtifact", "e-1/src", "abc123")},
        namespace_variables={"SourceVariables": {"CommitId": "abc123"}},
        variables={"env": "prod"},
        artifact_revisions={"SourceArtifact": {"revisionId": "abc123"}},
    )
    document = json.loads(json.dumps(seed.to_document()))
    assert RollbackSeed.from_document(document) == seed


# ------------------------------------------------------------ the rollback execution


def test_a_rollback_runs_only_its_stage_with_the_targets_artifacts_and_variables():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    newer = run_standard(world, "def456", "us-east-1")  # what the rollback must not see
    runs_before = len(world.runs)

    rollback = world.start(rollback=rollback_seed(world.state(target), "Build"))
    world.settle()

    assert world.run_order(rollback) == ["Build"]
    assert len(world.runs) == runs_before + 1
    (build,) = world.runs_of("Build", rollback)
    (target_build,) = world.runs_of("Build", target)
    assert build.input_artifacts == target_build.input_artifacts
    assert build.input_artifacts["SourceArtifact"].location == (
        f"{target}/Source/Source/SourceArtifact"
    )
    assert build.resolved_configuration == {
        "ProjectName": "app-staging",
        "EnvironmentVariables": "abc123@eu-west-1",
        "PrimarySource": rollback,
    }
    assert build.namespace_variables["SourceVariables"] == {"CommitId": "abc123"}
    assert world.runs_of("Deploy", rollback) == []
    # The newest execution ran with another commit: the rollback took the target's.
    (newer_build,) = world.runs_of("Build", newer)
    assert newer_build.resolved_configuration["EnvironmentVariables"] == "def456@us-east-1"

    state = world.state(rollback)
    assert state.status == "Succeeded"
    assert statuses(world, rollback) == {"Source": None, "Build": "Succeeded", "Deploy": None}
    assert world.action(rollback, "Build", "Build").resolved_configuration == (
        build.resolved_configuration
    )
    assert state.execution_type == "ROLLBACK"
    assert world.state(target).execution_type == "STANDARD"
    assert state.rollback is not None and state.rollback.target_execution_id == target
    assert state.variables == {"env": "staging", "region": "eu-west-1"}
    assert state.trigger == {"triggerType": "ManualRollback"}

    lane_effects = [
        e
        for owner, e in world.effects
        if owner == rollback and isinstance(e, WantStage | ReleaseStage | Finished)
    ]
    assert lane_effects == [WantStage("Build"), ReleaseStage("Build"), Finished("Succeeded", None)]

    document = json.loads(json.dumps(state.to_document()))
    assert document["rollback"]["targetExecutionId"] == target
    assert ExecutionState.from_document(document) == state


def test_a_rollback_start_asks_for_the_seeded_stage():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    seed = rollback_seed(world.state(target), "Deploy")

    transition = advance(new_execution("e-2"), Start(world.plan, rollback=seed), EPOCH)

    assert transition.effects == (ExecutionChanged("InProgress"), WantStage("Deploy"))
    assert transition.state.waiting_for == "Deploy"
    assert transition.state.rollback == seed
    assert all(s.status is None for s in transition.state.stages)


def test_a_rollback_of_the_last_stage_resolves_the_earlier_stages_namespaces():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    run_standard(world, "def456", "us-east-1")

    rollback = world.start(rollback=rollback_seed(world.state(target), "Deploy"))
    world.settle()

    (deploy,) = world.runs_of("Deploy", rollback)
    assert deploy.resolved_configuration["Key"] == "app:abc123"
    assert deploy.input_artifacts["BuildArtifact"].location == (
        f"{target}/Build/Build/BuildArtifact"
    )
    assert world.state(rollback).status == "Succeeded"
    assert statuses(world, rollback) == {"Source": None, "Build": None, "Deploy": "Succeeded"}


def test_a_failing_action_fails_the_rollback_and_starts_no_rollback_of_its_own():
    world = InMemoryPipelineWorld(rollback_plan(onFailure={"result": "ROLLBACK"}))
    target = run_standard(world, "abc123", "eu-west-1")
    seed = rollback_seed(world.state(target), "Build")

    world.fail("Build", "exit status 1")
    rollback = world.start(rollback=seed)
    world.settle()

    state = world.state(rollback)
    assert state.status == "Failed"
    assert state.status_summary == "Action Build in stage Build failed: exit status 1"
    assert statuses(world, rollback) == {"Source": None, "Build": "Failed", "Deploy": None}
    assert world.runs_of("Deploy", rollback) == []
    assert not any(isinstance(e, StartRollback) for _, e in world.effects)
    assert world.rollbacks == []


def test_a_failed_rollback_retried_ends_with_its_stage():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    world.fail("Build")
    rollback = world.start(rollback=rollback_seed(world.state(target), "Build"))
    world.settle()
    assert world.state(rollback).status == "Failed"

    world.retry(rollback, "Build", "FAILED_ACTIONS")
    world.settle()

    assert world.state(rollback).status == "Succeeded"
    assert world.run_order(rollback) == ["Build", "Build"]
    assert statuses(world, rollback) == {"Source": None, "Build": "Succeeded", "Deploy": None}


def test_a_seed_for_a_stage_the_plan_lacks_fails_the_execution():
    seed = RollbackSeed(stage="Gone", target_execution_id="e-1")
    transition = advance(new_execution("e-2"), Start(rollback_plan(), rollback=seed), EPOCH)

    assert transition.state.status == "Failed"
    assert transition.state.status_summary == "Stage Gone cannot be rolled back: no such stage."
    assert not any(isinstance(e, WantStage) for e in transition.effects)


def test_a_document_without_a_rollback_decodes_as_a_standard_execution():
    state = advance(new_execution("e-1"), Start(rollback_plan()), EPOCH).state
    document = state.to_document()
    del document["rollback"]
    decoded = ExecutionState.from_document(document)
    assert decoded == state and decoded.execution_type == "STANDARD"


# ------------------------------------------------------------ what cannot be rolled back to


def test_rollback_problem_accepts_a_stage_the_target_succeeded_in():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    assert rollback_problem(world.state(target), "Build") is None
    assert rollback_problem(world.state(target), "Deploy") is None


def test_rollback_problem_refuses_the_first_stage():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")

    problem = rollback_problem(world.state(target), "Source")

    assert problem == (
        f"Stage Source cannot be rolled back to pipeline execution {target}: it is the "
        "pipeline's source stage, which cannot be rolled back."
    )
    with pytest.raises(ValueError, match="source stage"):
        rollback_seed(world.state(target), "Source")


def test_rollback_problem_refuses_a_stage_the_target_failed_in_or_never_reached():
    world = InMemoryPipelineWorld(rollback_plan())
    world.fail("Build", "exit status 2")
    failed = world.start(variables={"region": "eu-west-1"})
    world.settle()
    assert world.state(failed).status == "Failed"

    assert rollback_problem(world.state(failed), "Build") == (
        f"Stage Build cannot be rolled back to pipeline execution {failed}: the execution "
        "did not succeed in that stage (it is Failed)."
    )
    problem = rollback_problem(world.state(failed), "Deploy")
    assert problem is not None and problem.endswith("(it is not reached).")
    with pytest.raises(ValueError, match="did not succeed"):
        rollback_seed(world.state(failed), "Build")


def test_rollback_problem_refuses_an_unknown_stage():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")

    assert rollback_problem(world.state(target), "Staging") == (
        f"Stage Staging cannot be rolled back to pipeline execution {target}: the pipeline "
        "has no such stage."
    )


def test_rollback_problem_refuses_a_rollback_target_and_an_unstarted_one():
    world = InMemoryPipelineWorld(rollback_plan())
    target = run_standard(world, "abc123", "eu-west-1")
    rollback = world.start(rollback=rollback_seed(world.state(target), "Build"))
    world.settle()
    assert world.state(rollback).status == "Succeeded"

    problem = rollback_problem(world.state(rollback), "Build")
    assert problem is not None and problem.endswith("that execution is itself a rollback.")
    unstarted = rollback_problem(new_execution("e-9"), "Build")
    assert unstarted is not None and unstarted.endswith("the execution has not started.")


def test_a_rollback_carries_the_targets_source_revisions():
    world = InMemoryPipelineWorld(rollback_plan())
    revision = {"revisionId": "abc123", "revisionSummary": "Fix the build"}
    world.script("Source", Succeed(output_variables={"CommitId": "abc123"}, revision=revision))
    target = world.start(variables={"region": "eu-west-1"})
    world.settle()

    seed = rollback_seed(world.state(target), "Build")
    assert seed.artifact_revisions == {"SourceArtifact": revision}
    rollback = world.start(rollback=seed)
    world.settle()

    assert world.state(rollback).artifact_revisions == {"SourceArtifact": revision}
    (build,) = world.runs_of("Build", rollback)
    assert build.input_artifacts["SourceArtifact"].revision == "abc123"
