"""Every service Forgeline runs, in one list: a new service is one folder and one line.

The core reads this list (through `forgeline.core.manifest`) and never names a service
package itself.
"""

from __future__ import annotations

from forgeline.codebuild.manifest import MANIFEST as CODEBUILD
from forgeline.codecommit.manifest import MANIFEST as CODECOMMIT
from forgeline.codedeploy.manifest import MANIFEST as CODEDEPLOY
from forgeline.codepipeline.manifest import MANIFEST as CODEPIPELINE
from forgeline.core.manifest import ServiceManifest

MANIFESTS: tuple[ServiceManifest, ...] = (CODECOMMIT, CODEBUILD, CODEDEPLOY, CODEPIPELINE)
