"""Labels of parameter versions: LabelParameterVersion and UnlabelParameterVersion. A label
names one version of its parameter at a time."""

from __future__ import annotations

from sqlalchemy.orm import Session

from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.ssm import parameters as store
from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion


class LabelOperations:
    def label_parameter_version(
        self, ctx: RequestContext, params: shapes.LabelParameterVersionRequest
    ) -> shapes.LabelParameterVersionResult:
        with session_scope() as session:
            parameter, version = _version_for_labels(session, ctx, params)
            labels = list(dict.fromkeys(params["Labels"]))
            invalid = [label for label in labels if store.label_problem(label)]
            valid = [label for label in labels if label not in invalid]
            merged = list(dict.fromkeys([*(version.labels or []), *valid]))
            if len(merged) > store.MAX_LABELS_PER_VERSION:
                raise errors.ParameterVersionLabelLimitExceeded(
                    f"A parameter version can have at most {store.MAX_LABELS_PER_VERSION} labels; "
                    f"version {version.version} of {parameter.name} would have {len(merged)}."
                )
            # A label names one version: attaching it here moves it off any other.
            for other in store.versions(session, parameter):
                if other.version != version.version and set(other.labels or []) & set(valid):
                    other.labels = [label for label in other.labels if label not in valid]
            version.labels = merged
            return {"InvalidLabels": invalid, "ParameterVersion": version.version}

    def unlabel_parameter_version(
        self, ctx: RequestContext, params: shapes.UnlabelParameterVersionRequest
    ) -> shapes.UnlabelParameterVersionResult:
        with session_scope() as session:
            _, version = _version_for_labels(session, ctx, params)
            requested = list(dict.fromkeys(params["Labels"]))
            present = set(version.labels or [])
            version.labels = [label for label in version.labels or [] if label not in requested]
            return {
                "RemovedLabels": [label for label in requested if label in present],
                "InvalidLabels": [label for label in requested if label not in present],
            }


def _version_for_labels(
    session: Session,
    ctx: RequestContext,
    params: shapes.LabelParameterVersionRequest | shapes.UnlabelParameterVersionRequest,
) -> tuple[SsmParameter, SsmParameterVersion]:
    """The version a label request names (the current one when it names none), locked."""
    parameter = store.find_exact(session, ctx.account_id, ctx.region, params["Name"], lock=True)
    if parameter is None:
        raise store.not_found(params["Name"])
    number = params["ParameterVersion"] if "ParameterVersion" in params else parameter.version
    version = store.version_row(session, parameter, number)
    if version is None:
        raise errors.ParameterVersionNotFound(
            f"Systems Manager could not find version {number} of {parameter.name}. "
            "Verify the version and try again."
        )
    return parameter, version
