#!/usr/bin/env bash
# Sets up the whole chain on a running Forgeline with the AWS CLI, from this folder:
#   a CodeCommit repository holding this app,
#   a CodeBuild project that runs its tests (buildspec.yml),
#   three local CodeDeploy agents behind Forgeline's traffic proxy (one deployment group,
#     OneAtATime, traffic control, automatic rollback),
#   and a pipeline Source -> Build -> Approval -> Deploy.
#
#   examples/pipeline-app/setup.sh [WORK_DIR]
#
# The AWS CLI must point at Forgeline (AWS_ENDPOINT_URL and the forgeline profile, as the
# README sets them) and `forgeline` be on PATH. WORK_DIR (default ./pipeline-demo) gets the
# agents' files, the app's clone and the agents' process ids (agents.pids, for teardown.sh).
# NAME (default pipeline-app) prefixes every resource; PROXY_PORT (default 4800) is where
# the app is served, its three copies listening on the next three ports.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mkdir -p "${1:-pipeline-demo}" && cd "${1:-pipeline-demo}" && pwd)"
name="${NAME:-pipeline-app}"
proxy_port="${PROXY_PORT:-4800}"
role=arn:aws:iam::000000000000:role/pipeline

# git signs in with the AWS CLI's credential helper (the variables above set).
git_push() {
  git -c credential.helper= \
      -c credential.helper='!aws codecommit credential-helper --ignore-host-check $@' \
      -c credential.UseHttpPath=true "$@"
}

echo "== repository $name, holding this app"
aws codecommit create-repository --repository-name "$name" >/dev/null
rm -rf "$work/app"
mkdir -p "$work/app"
cp -r "$here/app" "$here/tests" "$here/scripts" "$here/appspec.yml" "$here/buildspec.yml" "$work/app/"
git -C "$work/app" init -q -b main
git -C "$work/app" add .
git -C "$work/app" -c user.name=demo -c user.email=demo@example.com commit -q -m "pipeline-app v1"
git -C "$work/app" remote add origin "$AWS_ENDPOINT_URL/v1/repos/$name"
git_push -C "$work/app" push -q origin main

echo "== artifact bucket and build project"
aws s3 mb "s3://$name-artifacts" >/dev/null
aws codebuild create-project --name "$name-build" \
  --source type=CODEPIPELINE --artifacts type=CODEPIPELINE \
  --environment type=LINUX_CONTAINER,image=forgeline/tiny:latest,computeType=BUILD_GENERAL1_SMALL \
  --service-role "$role" >/dev/null

echo "== three agents behind the traffic proxy (port $proxy_port)"
forgeline traffic target-group create --name "$name-tg" --port "$proxy_port" \
  --deregistration-delay 1 >/dev/null
: > "$work/agents.pids"
for i in 1 2 3; do
  host="$name-web-$i"
  port=$((proxy_port + i))
  agent="$work/agent$i"
  mkdir -p "$agent"
  forgeline agent register --name "$host" --tags "App=$name" --config "$agent/agent.yml" \
    --root-dir "$agent/root" --destination-root "$agent/host" >/dev/null
  aws deploy add-tags-to-on-premises-instances --instance-names "$host" \
    --tags "Key=forgeline:address,Value=127.0.0.1:$port"
  PIPELINE_APP_ROOT="$agent/host" PIPELINE_APP_PORT="$port" \
    nohup forgeline agent run --config "$agent/agent.yml" >"$agent/agent.log" 2>&1 </dev/null &
  echo $! >> "$work/agents.pids"
done

echo "== deployment group $name/web (OneAtATime, traffic control, rollback on failure)"
aws deploy create-application --application-name "$name" >/dev/null
aws deploy create-deployment-group --application-name "$name" --deployment-group-name web \
  --service-role-arn "$role" --deployment-config-name CodeDeployDefault.OneAtATime \
  --on-premises-instance-tag-filters "Key=App,Value=$name,Type=KEY_AND_VALUE" \
  --deployment-style deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL \
  --load-balancer-info "targetGroupInfoList=[{name=$name-tg}]" \
  --auto-rollback-configuration enabled=true,events=DEPLOYMENT_FAILURE >/dev/null

echo "== pipeline $name: Source -> Build -> Approval -> Deploy"
cat > "$work/pipeline.json" <<JSON
{
  "pipeline": {
    "name": "$name",
    "roleArn": "$role",
    "artifactStore": {"type": "S3", "location": "$name-artifacts"},
    "stages": [
      {"name": "Source", "actions": [{
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "$name", "BranchName": "main", "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "SourceOutput"}],
        "namespace": "SourceVariables"}]},
      {"name": "Build", "actions": [{
        "name": "TestAndPackage",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "$name-build"},
        "inputArtifacts": [{"name": "SourceOutput"}],
        "outputArtifacts": [{"name": "BuildOutput"}],
        "namespace": "BuildVariables"}]},
      {"name": "Approval", "actions": [{
        "name": "Release",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"CustomData": "Release #{BuildVariables.APP_VERSION} (commit #{SourceVariables.CommitId})"}}]},
      {"name": "Deploy", "actions": [{
        "name": "Web",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"},
        "configuration": {"ApplicationName": "$name", "DeploymentGroupName": "web"},
        "inputArtifacts": [{"name": "BuildOutput"}]}]}
    ]
  }
}
JSON
aws codepipeline create-pipeline --cli-input-json "file://$work/pipeline.json" >/dev/null
echo "pipeline $name created; its first execution is running (the app's clone: $work/app)"
