"""Running pipeline executions: the driver around the pure engine (engine/), the jobs that
run actions, the actions themselves (actions/), timers and triggers."""
