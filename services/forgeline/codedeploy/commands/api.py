"""The CodeDeploy agents' command service (CodeDeployCommandService_v20141006): every
operation of its model, served by the deploy service beside CodeDeploy's own API."""

from __future__ import annotations

from forgeline.codedeploy.commands.generated.api import CodeDeployCommandsApi
from forgeline.codedeploy.commands.handlers import CommandOperations


class CommandServiceProvider(CommandOperations, CodeDeployCommandsApi):
    pass


PROVIDERS = {"codedeploy-commands": CommandServiceProvider}
