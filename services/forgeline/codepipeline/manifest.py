"""CodePipeline as the core sees it: the pipeline service (every operation answers 501 yet)."""

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

MANIFEST = ServiceManifest(name="codepipeline", service="pipeline", apis=(CODEPIPELINE,))
