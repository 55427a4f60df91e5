"""CodeDeploy's API handlers, one mixin per resource (composed in codedeploy/api.py)."""
