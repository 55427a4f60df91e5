"""Secrets Manager operations, one mixin per group (secrets, values, tags), composed in
forgeline/secretsmanager/api.py."""
