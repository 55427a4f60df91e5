"""CodeDeploy's orchestrator: the rules of a deployment as pure functions.

`machine.advance(state, event, now)` moves one deployment (`state.DeploymentState`) on an
event (`events`) and says what the driver must do (`effects`); `rollout` holds the
minimum-healthy-hosts arithmetic, `lifecycle` the lifecycle events and who performs them,
`options` what a deployment runs with, and `fake` an in-memory world that drives it for
tests and examples. Nothing here does I/O or reads a clock.
"""
