"""CodePipeline as the core sees it: the pipeline service."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, ServiceManifest, Subscription

CODEPIPELINE = ApiSpec(
    "codepipeline",
    "pipeline",
    "CodePipeline",
    "ValidationException",
    "InvalidNextTokenException",
    package="codepipeline",
)

MANIFEST = ServiceManifest(
    name="codepipeline",
    service="pipeline",
    apis=(CODEPIPELINE,),
    table_modules=(
        "forgeline.codepipeline.tables.pipelines",
        "forgeline.codepipeline.tables.executions",
        "forgeline.codepipeline.tables.jobs",
        "forgeline.codepipeline.tables.webhooks",
    ),
    # Webhooks are served beside the API.
    http_mounts=("forgeline.codepipeline.http:mount",),
    # Running actions and handing grants between executions (jobs), and feeding their
    # timers (a watcher beside each worker).
    task_modules=(
        "forgeline.codepipeline.running.jobs",
        "forgeline.codepipeline.running.timers",
    ),
    subscriptions=(
        # Pushes and pull requests of a watched repository start the pipeline.
        Subscription(
            "codecommit.ref_changes", "forgeline.codepipeline.running.triggers:on_ref_changes"
        ),
        Subscription(
            "codecommit.pull_request_change",
            "forgeline.codepipeline.running.triggers:on_pull_request_change",
        ),
        # Builds and deployments end the actions waiting on them.
        Subscription(
            "codebuild.build_finished", "forgeline.codepipeline.running.listeners:on_build_finished"
        ),
        Subscription(
            "codedeploy.deployment_finished",
            "forgeline.codepipeline.running.listeners:on_deployment_finished",
        ),
    ),
    on_worker_start=("forgeline.codepipeline.running.timers:start_watching",),
    on_worker_stop=("forgeline.codepipeline.running.timers:stop_watching",),
)
