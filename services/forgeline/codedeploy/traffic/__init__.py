"""The traffic proxy CodeDeploy drives: a Forgeline-managed HAProxy whose target groups
(a frontend on a port, a backend of weighted members) deployments move traffic between.

- `model` (pure): target groups, members, their validation and JSON document.
- `config` (pure): the haproxy.cfg for a set of target groups.
- `reconcile` (pure): what to change at runtime so HAProxy matches the model.
- `runtime`: the runtime API over HAProxy's admin socket (live changes, no reload).
- `process`: starting, adopting, reloading and stopping the HAProxy process.
- `store`: the desired state on disk, and the lock that serializes changes to it.
- `proxy`: the facade a deployment driver uses (`TrafficProxy`).
"""
