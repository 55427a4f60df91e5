"""The agents' side of CodeDeploy: the command service AWS's agent (and ours) speaks.

An agent long-polls for the next lifecycle command of its host (`PollHostCommand`), fetches
the deployment's signed specification, acknowledges the command and reports its outcome.
The deployment driver queues commands (`queue.py`) and hears their outcomes through the
`host_command_finished` hook (`listeners.py`).
"""
