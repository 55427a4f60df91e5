"""SSM Parameter Store operations, one mixin per group (writing, labels, reading, tags),
composed in forgeline/ssm/api.py."""
