"""CloudWatch's metric alarms subset, served by the deploy service: CodeDeploy stops (and
may roll back) a deployment when one of its group's alarms goes to ALARM."""
