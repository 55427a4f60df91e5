"""Running deployments: the adapters around the pure orchestrator.

driver         one transition: load the state, advance the machine, perform its effects
creation       a deployment row from a CreateDeployment request (or a rollback)
targets        which on-premises instances a deployment reaches, and their health
starting       the job that starts a created deployment
reactions      what moves a running deployment: agents' reports, alarms, stops
timers         the watcher that feeds due timers and silent agents to the machine
notifications  state-change events on the event stream and deployment group triggers
"""
