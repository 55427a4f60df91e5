"""CodePipeline's engine: how fast a push starts a pipeline, and what the engine costs on
top of the actions it runs, each against a baseline measured in the same run.

Each figure runs on the embedded default (SQLite, in-process worker) and on Postgres +
Redis with a separate Celery worker process (`--backends` chooses).

1. git push -> execution InProgress: a real `git push` to a branch a pipeline's CodeCommit
   source watches; the time from the push's return to an InProgress execution being
   listed. The push starts the execution inside its own transaction, so it is listed as
   soon as the push returns. Target: <= 1 s. Baseline: the push itself.
2. Engine overhead of a three-stage pipeline of no-op actions (S3 source -> S3 deploy ->
   S3 deploy of a 100-byte object): the execution's end-to-end time (StartPipelineExecution
   -> Succeeded seen by the client, polling every 20 ms) minus the baseline: the same three
   object copies made by the client through the S3 API. Target: <= 2 s.
3. 20 such pipelines started at once: the wall time until all 20 Succeeded divided by their
   transitions (20 x 3 actions, each entering its stage and ending): an upper bound on the
   overhead per transition, as it counts the actions' own work too. Target: <= 100 ms.

    .venv/bin/python bench/pipeline.py [--backends sqlite,postgres] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_fleet import FORGELINE, BenchServer  # noqa: E402

PG_ADMIN_URL = os.environ.get("FORGELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FORGELINE_BENCH_REDIS", "redis://127.0.0.1:6379/6")
ROLE = "arn:aws:iam::000000000000:role/bench"
FLEET = 20


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", text)
    return buffer.getvalue()


def _kind(category: str, provider: str) -> dict[str, str]:
    return {"category": category, "owner": "AWS", "provider": provider, "version": "1"}


def noop_pipeline(name: str, bucket: str) -> dict[str, Any]:
    """S3 source -> S3 deploy -> S3 deploy: three actions that each copy a tiny object."""
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get", "actionTypeId": _kind("Source", "S3"),
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "source.zip",
                                  "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "One", "actions": [{
                "name": "Put", "actionTypeId": _kind("Deploy", "S3"),
                "configuration": {"BucketName": bucket, "Extract": "false",
                                  "ObjectKey": f"{name}/one.zip"},
                "inputArtifacts": [{"name": "Src"}]}]},
            {"name": "Two", "actions": [{
                "name": "Put", "actionTypeId": _kind("Deploy", "S3"),
                "configuration": {"BucketName": bucket, "Extract": "false",
                                  "ObjectKey": f"{name}/two.zip"},
                "inputArtifacts": [{"name": "Src"}]}]},
        ],
    }  # fmt: skip


def push_pipeline(name: str, repository: str, bucket: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get", "actionTypeId": _kind("Source", "CodeCommit"),
                "configuration": {"RepositoryName": repository, "BranchName": "main",
                                  "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Hold", "actions": [{
                "name": "Review", "actionTypeId": _kind("Approval", "Manual")}]},
        ],
    }  # fmt: skip


def wait_status(pipelines: Any, name: str, execution_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = pipelines.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId=execution_id
        )["pipelineExecution"]["status"]
        if status not in ("InProgress", "Stopping"):
            return str(status)
        time.sleep(0.02)
    raise SystemExit(f"execution {execution_id} of {name} did not finish")


def measure_push(server: BenchServer, folder: Path, runs: int) -> list[tuple[float, float]]:
    """(push seconds, push return -> InProgress listed seconds) per push."""
    codecommit, pipelines, s3 = (server.client(n) for n in ("codecommit", "codepipeline", "s3"))
    codecommit.create_repository(repositoryName="bench-app")
    s3.create_bucket(Bucket="bench-push")
    key, secret = server.admin_credentials()
    url = f"{server.url}/v1/repos/bench-app"
    work = folder / "clone"
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com",
           "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    helper = ["-c", "credential.helper=", "-c",
              "credential.helper=!aws codecommit credential-helper --ignore-host-check $@",
              "-c", "credential.UseHttpPath=true"]  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    results = []
    for number in range(runs + 1):
        (work / "file.txt").write_text(f"change {number}\n")
        subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", f"c{number}"], cwd=work, check=True, env=env)
        seen = set()
        if number:
            seen = {e["pipelineExecutionId"] for e in pipelines.list_pipeline_executions(
                pipelineName="bench-push")["pipelineExecutionSummaries"]}  # fmt: skip
        started = time.monotonic()
        subprocess.run(["git", *helper, "push", "-q", url, "HEAD:main"], cwd=work, check=True,
                       env=env, capture_output=True)  # fmt: skip
        pushed = time.monotonic()
        if number == 0:
            pipelines.create_pipeline(
                pipeline=push_pipeline("bench-push", "bench-app", "bench-push")
            )
            continue
        while True:
            listed = pipelines.list_pipeline_executions(pipelineName="bench-push")[
                "pipelineExecutionSummaries"
            ]
            if any(e["pipelineExecutionId"] not in seen and e["status"] == "InProgress"
                   for e in listed):  # fmt: skip
                break
            time.sleep(0.005)
        results.append((pushed - started, time.monotonic() - pushed))
    return results


def measure_noop(server: BenchServer, runs: int) -> tuple[list[float], list[float], float]:
    """(overheads, baselines, per-transition overhead with FLEET at once)."""
    pipelines, s3 = server.client("codepipeline"), server.client("s3")
    s3.create_bucket(Bucket="bench-noop")
    s3.put_object(Bucket="bench-noop", Key="source.zip", Body=_zip("x" * 100))
    pipelines.create_pipeline(pipeline=noop_pipeline("noop", "bench-noop"))
    first = pipelines.list_pipeline_executions(pipelineName="noop")["pipelineExecutionSummaries"]
    wait_status(pipelines, "noop", first[0]["pipelineExecutionId"])
    overheads, baselines = [], []
    for _ in range(runs):
        started = time.monotonic()
        execution = pipelines.start_pipeline_execution(name="noop")["pipelineExecutionId"]
        status = wait_status(pipelines, "noop", execution)
        total = time.monotonic() - started
        assert status == "Succeeded", status
        started = time.monotonic()
        body = s3.get_object(Bucket="bench-noop", Key="source.zip")["Body"].read()
        s3.put_object(Bucket="bench-noop", Key="copy/src.zip", Body=body)
        s3.put_object(Bucket="bench-noop", Key="copy/one.zip", Body=body)
        s3.put_object(Bucket="bench-noop", Key="copy/two.zip", Body=body)
        baseline = time.monotonic() - started
        baselines.append(baseline)
        overheads.append(total - baseline)
    names = [f"fleet-{n}" for n in range(FLEET)]
    for name in names:
        pipelines.create_pipeline(pipeline=noop_pipeline(name, "bench-noop"))
    for name in names:
        for summary in pipelines.list_pipeline_executions(pipelineName=name)[
            "pipelineExecutionSummaries"
        ]:
            wait_status(pipelines, name, summary["pipelineExecutionId"])
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda n: pipelines.start_pipeline_execution(name=n)[
            "pipelineExecutionId"], names))  # fmt: skip
        statuses = list(
            pool.map(lambda pair: wait_status(pipelines, *pair), zip(names, ids, strict=True))
        )
    wall = time.monotonic() - started
    assert set(statuses) == {"Succeeded"}, statuses
    transitions = FLEET * 3 * 2  # each action: its stage entered, then its end
    return overheads, baselines, wall / transitions


def server_for(folder: Path, backend: str) -> tuple[BenchServer, subprocess.Popen[bytes] | None]:
    server = BenchServer(folder, pg_admin_url=PG_ADMIN_URL if backend == "postgres" else None)
    worker = None
    if backend == "postgres":
        server.env.update(
            FORGELINE_BROKER_URL=REDIS_URL,
            FORGELINE_WORKER="external",
            FORGELINE_BROKER_QUEUE=f"bench-{server.port}",
        )
    server.start()
    if backend == "postgres":
        with open(folder / "worker.log", "ab") as log:
            worker = subprocess.Popen([*FORGELINE, "worker"], env=server.env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return server, worker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"forgeline-bench-pipeline-{backend}-") as tmp:
            folder = Path(tmp)
            server, worker = server_for(folder, backend)
            try:
                pushes = measure_push(server, folder, args.runs)
                overheads, baselines, per_transition = measure_noop(server, args.runs)
            finally:
                if worker is not None:
                    worker.terminate()
                    worker.wait(20)
                server.stop()
        report(backend, pushes, overheads, baselines, per_transition)


def report(
    backend: str,
    pushes: list[tuple[float, float]],
    overheads: list[float],
    baselines: list[float],
    per_transition: float,
) -> None:
    push_time = statistics.median(p for p, _ in pushes)
    latency = statistics.median(lag for _, lag in pushes)
    overhead, baseline = statistics.median(overheads), statistics.median(baselines)
    print(f"== {backend}")
    print(
        f"git push -> execution InProgress: median {latency * 1000:.0f} ms after the push "
        f"returned (max {max(lag for _, lag in pushes) * 1000:.0f} ms; target <= 1 s); "
        f"the push itself {push_time * 1000:.0f} ms ({latency / push_time:.2f}x)"
    )
    print(
        f"three-stage no-op pipeline: engine overhead median {overhead:.2f} s (target <= 2 s) "
        f"over the same copies made by the client ({baseline * 1000:.0f} ms; end to end "
        f"{(overhead + baseline) / baseline:.1f}x the baseline)"
    )
    print(
        f"{FLEET} pipelines at once: at most {per_transition * 1000:.0f} ms per transition "
        "(wall time / transitions; target <= 100 ms)"
    )


if __name__ == "__main__":
    main()
