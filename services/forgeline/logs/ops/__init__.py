"""CloudWatch Logs operations, one mixin per group (log groups, tags, streams, events),
composed in forgeline/logs/api.py."""
