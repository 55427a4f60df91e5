"""CodeDeploy as the core sees it: the deploy service (every operation answers 501 yet)."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, ServiceManifest

CODEDEPLOY = ApiSpec(
    "codedeploy",
    "deploy",
    "CodeDeploy",
    "ValidationException",
    "InvalidNextTokenException",
    package="codedeploy",
)

MANIFEST = ServiceManifest(name="codedeploy", service="deploy", apis=(CODEDEPLOY,))
