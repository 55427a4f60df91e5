"""CodePipeline as the core sees it: the pipeline service."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, ServiceManifest

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
    ),
)
