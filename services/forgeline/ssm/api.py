"""SSM Parameter Store: the parameters buildspecs read (the subset Forgeline implements; every other operation answers 501).

Put, get (by name, names, path), describe, history, labels, tags and delete; each group of
operations is a mixin of forgeline/ssm/ops/.
"""

from __future__ import annotations

from forgeline.ssm.generated.api import SSMApi
from forgeline.ssm.ops.labels import LabelOperations
from forgeline.ssm.ops.reading import ReadOperations
from forgeline.ssm.ops.tags import TagOperations
from forgeline.ssm.ops.writing import WriteOperations


class SsmProvider(WriteOperations, LabelOperations, ReadOperations, TagOperations, SSMApi):
    """SSM as Forgeline serves it: Parameter Store only."""


PROVIDERS = {"ssm": SsmProvider}
