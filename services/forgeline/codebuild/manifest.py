"""CodeBuild as the core sees it: the build service, which also serves the APIs builds
need (CloudWatch Logs, SSM Parameter Store, Secrets Manager, the S3 subset)."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, Hook, ServiceManifest, Subscription

CODEBUILD = ApiSpec(
    "codebuild",
    "build",
    "CodeBuild",
    "InvalidInputException",
    "InvalidInputException",
    package="codebuild",
)
# Forgeline implements a subset of each supporting API; every other operation answers 501.
LOGS = ApiSpec(
    "logs",
    "build",
    "CloudWatchLogs",
    "InvalidParameterException",
    "InvalidParameterException",
    package="logs",
)
SSM = ApiSpec("ssm", "build", "SSM", "ValidationException", "InvalidNextToken", package="ssm")
SECRETS_MANAGER = ApiSpec(
    "secretsmanager",
    "build",
    "SecretsManager",
    "InvalidParameterException",
    "InvalidNextTokenException",
    package="secretsmanager",
)

MANIFEST = ServiceManifest(
    name="codebuild",
    service="build",
    apis=(CODEBUILD,),
    supporting_apis=(LOGS, SSM, SECRETS_MANAGER),
    table_modules=(
        "forgeline.codebuild.tables.builds",
        "forgeline.codebuild.tables.projects",
        "forgeline.logs.tables",
        "forgeline.ssm.tables",
        "forgeline.secretsmanager.tables",
        "forgeline.codebuild.tables.reports",
        "forgeline.codebuild.tables.source_credentials",
        "forgeline.codebuild.tables.batches",
    ),
    task_modules=("forgeline.codebuild.scheduler", "forgeline.codebuild.batch_coordinator"),
    http_mounts=("forgeline.codebuild.http:mount",),
    # The S3 subset builds read sources from and write artifacts to.
    endpoints=("forgeline.s3:S3Endpoint",),
    hooks=(
        # A build reached its end, inside the transaction that records it.
        Hook("build_finished", "forgeline.codebuild.builds:BUILD_FINISHED_LISTENERS"),
    ),
    subscriptions=(
        # Webhook builds start from repository events, wherever a repository changes.
        Subscription("codecommit.ref_changes", "forgeline.codebuild.webhooks:on_ref_changes"),
        Subscription(
            "codecommit.pull_request_change", "forgeline.codebuild.webhooks:on_pull_request_change"
        ),
        # Batches advance when one of their builds finishes.
        Subscription(
            "codebuild.build_finished", "forgeline.codebuild.batch_coordinator:on_build_finished"
        ),
    ),
    # Builds run beside an embedded worker's pool: say where (Docker or host processes)
    # and why, watch the queue, and end them before the pool stops.
    on_worker_start=(
        "forgeline.codebuild.runners:describe_runner_choice",
        "forgeline.codebuild.scheduler:start_watching",
    ),
    on_worker_stop=("forgeline.codebuild.scheduler:shutdown_all",),
)
