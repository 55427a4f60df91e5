"""CodeDeploy as the core sees it: the deploy service, which also serves the agents'
command service (CodeDeployCommandService_v20141006, a model of our own: botocore has none)."""

from __future__ import annotations

from forgeline.core.manifest import ApiSpec, Hook, ServiceManifest, Subscription

CODEDEPLOY = ApiSpec(
    "codedeploy",
    "deploy",
    "CodeDeploy",
    "ValidationException",
    "InvalidNextTokenException",
    package="codedeploy",
)
# What agents on the hosts call: poll for commands, fetch the signed specification, report.
COMMANDS = ApiSpec(
    "codedeploy-commands",
    "deploy",
    "CodeDeployCommands",
    "ClientException",
    "ClientException",
    package="codedeploy.commands",
    model_dir="model",
)
# CloudWatch metric alarms: a deployment stops when one of its group's alarms goes to ALARM.
CLOUDWATCH = ApiSpec(
    "cloudwatch",
    "deploy",
    "CloudWatch",
    "ValidationException",
    "InvalidNextToken",
    package="cloudwatch",
)

MANIFEST = ServiceManifest(
    name="codedeploy",
    service="deploy",
    apis=(CODEDEPLOY,),
    supporting_apis=(COMMANDS, CLOUDWATCH),
    table_modules=(
        "forgeline.codedeploy.tables.applications",
        "forgeline.codedeploy.tables.deployment_groups",
        "forgeline.codedeploy.tables.deployment_configs",
        "forgeline.codedeploy.tables.instances",
        "forgeline.codedeploy.tables.deployments",
        "forgeline.cloudwatch.tables",
    ),
    hooks=(
        # An agent took a command up (its first acknowledgement), inside that transaction.
        Hook(
            "host_command_acknowledged",
            "forgeline.codedeploy.commands.listeners:HOST_COMMAND_ACKNOWLEDGED_LISTENERS",
        ),
        # An agent reported a command's outcome, inside the transaction that records it.
        Hook(
            "host_command_finished",
            "forgeline.codedeploy.commands.listeners:HOST_COMMAND_FINISHED_LISTENERS",
        ),
        # An alarm's state value changed (SetAlarmState), inside the transaction recording it.
        Hook("alarm_state_changed", "forgeline.cloudwatch.alarm_state:ALARM_STATE_LISTENERS"),
        # A deployment ended, inside the transaction recording its end.
        Hook(
            "deployment_finished",
            "forgeline.codedeploy.deploying.creation:DEPLOYMENT_FINISHED_LISTENERS",
        ),
    ),
    # Starting deployments and their traffic steps (jobs), and feeding their timers (a
    # watcher beside each worker).
    task_modules=(
        "forgeline.codedeploy.deploying.starting",
        "forgeline.codedeploy.deploying.traffic_steps",
        "forgeline.codedeploy.deploying.hook_calls",
        "forgeline.codedeploy.deploying.timers",
    ),
    subscriptions=(
        # Agents' reports and alarms move running deployments.
        Subscription(
            "codedeploy.host_command_acknowledged",
            "forgeline.codedeploy.deploying.reactions:on_host_command_acknowledged",
        ),
        Subscription(
            "codedeploy.host_command_finished",
            "forgeline.codedeploy.deploying.reactions:on_host_command_finished",
        ),
        Subscription(
            "codedeploy.alarm_state_changed",
            "forgeline.codedeploy.deploying.reactions:on_alarm_state_changed",
        ),
    ),
    on_worker_start=("forgeline.codedeploy.deploying.timers:start_watching",),
    on_worker_stop=("forgeline.codedeploy.deploying.timers:stop_watching",),
    # Agents' long polls answer at once when a server stops, instead of holding it.
    on_server_stopping=("forgeline.codedeploy.commands.doorbell:wake_everyone",),
)
