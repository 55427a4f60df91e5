"""CodeDeploy: applications, revisions, deployment groups, deployment configurations,
on-premises instances, deployments and tags, each a mixin of forgeline/codedeploy/ops/.

Deployments run in codedeploy/deploying/ (the driver around the pure orchestrator) through
the agents' command service (codedeploy/commands/).
"""

from __future__ import annotations

from forgeline.codedeploy.generated.api import CodeDeployApi
from forgeline.codedeploy.ops.account import AccountOperations
from forgeline.codedeploy.ops.applications import ApplicationOperations
from forgeline.codedeploy.ops.deployment_configs import DeploymentConfigOperations
from forgeline.codedeploy.ops.deployment_groups import DeploymentGroupOperations
from forgeline.codedeploy.ops.deployments import DeploymentOperations
from forgeline.codedeploy.ops.on_premises import OnPremisesOperations
from forgeline.codedeploy.ops.revisions import RevisionOperations
from forgeline.codedeploy.ops.tags import TagOperations


class CodeDeployProvider(
    ApplicationOperations,
    RevisionOperations,
    DeploymentGroupOperations,
    DeploymentConfigOperations,
    DeploymentOperations,
    OnPremisesOperations,
    TagOperations,
    AccountOperations,
    CodeDeployApi,
):
    pass


PROVIDERS = {"codedeploy": CodeDeployProvider}
