"""SSM Parameter Store: the parameters buildspecs read (the subset Forgeline implements; every other operation answers 501)."""

from __future__ import annotations

from forgeline.ssm.ops import SsmProvider

PROVIDERS = {"ssm": SsmProvider}
