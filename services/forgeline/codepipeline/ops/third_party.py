"""The third-party job API (PollForThirdPartyJobs, GetThirdPartyJobDetails,
AcknowledgeThirdPartyJob, PutThirdPartyJobSuccessResult, PutThirdPartyJobFailureResult).

Third-party jobs belong to action types owned by ThirdParty (GitHub, Alexa Skills Kit),
which this server refuses in pipelines (structure.py): no such job can exist here. So a
poll for a known third-party type finds none, a poll for an unknown type is refused, and
every job id is unknown, as AWS answers for an id it never issued.
"""

from __future__ import annotations

from forgeline.codepipeline import action_types
from forgeline.codepipeline.generated import errors, shapes
from forgeline.core.context import RequestContext

THIRD_PARTY = "ThirdParty"


def _no_job(job_id: str) -> errors.JobNotFoundException:
    return errors.JobNotFoundException(f"Third-party job {job_id} does not exist.")


class ThirdPartyJobOperations:
    def poll_for_third_party_jobs(
        self, ctx: RequestContext, params: shapes.PollForThirdPartyJobsInput
    ) -> shapes.PollForThirdPartyJobsOutput:
        kind = params["actionTypeId"]
        known = action_types.find_builtin(
            kind["category"], kind["owner"], kind["provider"], kind["version"]
        )
        if known is None or kind["owner"] != THIRD_PARTY:
            raise errors.ActionTypeNotFoundException(
                f"Third-party action type {kind['category']}/{kind['owner']}/"
                f"{kind['provider']}/{kind['version']} does not exist."
            )
        return {"jobs": []}

    def get_third_party_job_details(
        self, ctx: RequestContext, params: shapes.GetThirdPartyJobDetailsInput
    ) -> shapes.GetThirdPartyJobDetailsOutput:
        raise _no_job(params["jobId"])

    def acknowledge_third_party_job(
        self, ctx: RequestContext, params: shapes.AcknowledgeThirdPartyJobInput
    ) -> shapes.AcknowledgeThirdPartyJobOutput:
        raise _no_job(params["jobId"])

    def put_third_party_job_success_result(
        self, ctx: RequestContext, params: shapes.PutThirdPartyJobSuccessResultInput
    ) -> None:
        raise _no_job(params["jobId"])

    def put_third_party_job_failure_result(
        self, ctx: RequestContext, params: shapes.PutThirdPartyJobFailureResultInput
    ) -> None:
        raise _no_job(params["jobId"])
