"""Source / CodeCommit: the branch's head commit (or StartPipelineExecution's COMMIT_ID
override), its tree zipped into the artifact store, and AWS's output variables.

With OutputArtifactFormat CODEBUILD_CLONE_REF the artifact is instead a reference to the
commit (clone_refs.py), which a CodeBuild action turns into a full git clone."""

from __future__ import annotations

from forgeline.codecommit import interface as codecommit
from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.running.actions import clone_refs
from forgeline.codepipeline.running.actions.context import ActionContext, Failed, Outcome, Succeeded
from forgeline.s3 import interface as s3

ZIP = "application/zip"


def run(context: ActionContext) -> Outcome:
    name = context.configuration.get("RepositoryName", "")
    branch = context.configuration.get("BranchName", "")
    repository = codecommit.find_repository(
        context.session, context.account_id, context.region, name
    )
    if repository is None:
        return Failed(f"The repository {name} does not exist in this account and region.")
    git = codecommit.open_git(repository)
    override = context.source_revision or {}
    commit_id = (
        override.get("revisionValue")
        if override.get("revisionType") == "COMMIT_ID"
        else codecommit.branch_head(git, branch)
    )
    if not commit_id:
        return Failed(f"The branch {branch} of repository {name} does not exist or is empty.")
    try:
        info = codecommit.commit_info(git, commit_id)
        archive = codecommit.zip_tree(git, commit_id)
    except KeyError:
        return Failed(f"The commit {commit_id} is not in repository {name}.")
    if not s3.bucket_exists(context.settings, context.artifact_bucket):
        return Failed(
            f"The artifact store's bucket {context.artifact_bucket} does not exist: "
            "create it (aws s3 mb) or name another in the pipeline's artifactStore."
        )
    artifact = context.output_artifact_names[0]
    key = context.artifact_key(artifact)
    if context.configuration.get("OutputArtifactFormat") == clone_refs.FORMAT:
        reference = clone_refs.CloneRef(name, branch, info.commit_id)
        s3.put_object(
            context.settings,
            context.artifact_bucket,
            key,
            reference.to_bytes(),
            clone_refs.CONTENT_TYPE,
        )
    else:
        s3.put_object(context.settings, context.artifact_bucket, key, archive, ZIP)
    first_line = info.message.strip().splitlines()[0] if info.message.strip() else ""
    return Succeeded(
        output_artifacts={
            artifact: ArtifactRef(artifact, f"{context.artifact_bucket}/{key}", info.commit_id)
        },
        output_variables={
            "CommitId": info.commit_id,
            "BranchName": branch,
            "RepositoryName": name,
            "CommitMessage": info.message.strip(),
            "AuthorDate": info.author_date.isoformat(),
            "CommitterDate": info.committer_date.isoformat(),
            "AuthorEmail": info.author_email,
            "AuthorDisplayName": info.author_name,
        },
        summary=first_line,
        external_id=info.commit_id,
        revision={"revisionId": info.commit_id, "revisionSummary": first_line},
    )
