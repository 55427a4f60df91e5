"""CodeCommit as the core sees it: the repo service."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, Hook, ServiceManifest, Subscription

CODECOMMIT = ApiSpec(
    "codecommit",
    "repo",
    "CodeCommit",
    "ValidationException",
    "InvalidContinuationTokenException",
    package="codecommit",
)

MANIFEST = ServiceManifest(
    name="codecommit",
    service="repo",
    apis=(CODECOMMIT,),
    table_modules=(
        "forgeline.codecommit.tables.repositories",
        "forgeline.codecommit.tables.git_credentials",
        "forgeline.codecommit.tables.pull_requests",
        "forgeline.codecommit.tables.comments",
        "forgeline.codecommit.tables.triggers",
    ),
    http_mounts=("forgeline.codecommit.http:mount",),
    hooks=(
        # Pushes, API commits and merges, inside the transaction that records them.
        Hook("ref_changes", "forgeline.codecommit.gitstore:REF_CHANGE_LISTENERS"),
        # Pull request created, source updated, merged, closed.
        Hook(
            "pull_request_change", "forgeline.codecommit.pull_request_events:PULL_REQUEST_LISTENERS"
        ),
    ),
    subscriptions=(
        Subscription("codecommit.ref_changes", "forgeline.codecommit.pull_requests:on_ref_changes"),
        Subscription("codecommit.ref_changes", "forgeline.codecommit.triggers:on_ref_changes"),
    ),
)
