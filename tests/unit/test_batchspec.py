"""The batch section of a buildspec: build-list, build-graph, build-matrix, and the
rules that decide what a running batch does next."""

from __future__ import annotations

import pytest

from forgeline.codebuild import batches
from forgeline.codebuild.batches import (
    BatchspecError,
    GroupState,
    check_restrictions,
    parse_batchspec,
    plan_next,
)
from forgeline.codebuild.buildspec import parse_buildspec


def batch_of(text: str) -> batches.Batchspec:
    return parse_batchspec(parse_buildspec(text).batch)


def test_build_list_from_a_buildspec():
    spec = batch_of(
        """
version: 0.2
batch:
  fast-fail: true
  build-list:
    - identifier: linux_small
      env:
        compute-type: BUILD_GENERAL1_SMALL
        variables:
          TARGET: linux
          LEVEL: 3
    - identifier: docs
      buildspec: docs/buildspec.yml
      ignore-failure: true
      debug-session: false
      env:
        image: forgeline/tiny:latest
        privileged-mode: true
        type: LINUX_CONTAINER
phases:
  build:
    commands: [echo hi]
"""
    )
    assert spec.kind == batches.BUILD_LIST
    assert spec.fast_fail is True
    first, second = spec.tasks
    assert first.identifier == "linux_small"
    assert first.env.compute_type == "BUILD_GENERAL1_SMALL"
    assert first.env.variables == {"TARGET": "linux", "LEVEL": "3"}
    assert first.ignore_failure is False and first.depends_on == ()
    assert second.buildspec == "docs/buildspec.yml"
    assert second.ignore_failure is True and second.debug_session is False
    assert second.env.image == "forgeline/tiny:latest"
    assert second.env.privileged_mode is True
    assert second.env.environment_type == "LINUX_CONTAINER"


def test_build_graph_keeps_dependencies():
    spec = parse_batchspec(
        {
            "build-graph": [
                {"identifier": "build1"},
                {"identifier": "build2", "depend-on": ["build1"]},
                {"identifier": "build3", "depend-on": ["build1", "build2"]},
            ]
        }
    )
    assert spec.kind == batches.BUILD_GRAPH
    assert spec.fast_fail is False
    assert [t.depends_on for t in spec.tasks] == [(), ("build1",), ("build1", "build2")]


def test_build_graph_cycle_is_an_error():
    with pytest.raises(BatchspecError, match="cycle: a -> c -> b -> a"):
        parse_batchspec(
            {
                "build-graph": [
                    {"identifier": "a", "depend-on": ["c"]},
                    {"identifier": "b", "depend-on": ["a"]},
                    {"identifier": "c", "depend-on": ["b"]},
                ]
            }
        )


def test_build_graph_self_dependency_is_an_error():
    with pytest.raises(BatchspecError, match="depends on itself"):
        parse_batchspec({"build-graph": [{"identifier": "a", "depend-on": ["a"]}]})


def test_unknown_dependency_is_an_error():
    with pytest.raises(BatchspecError, match="'missing', which is not a build task"):
        parse_batchspec(
            {"build-graph": [{"identifier": "a"}, {"identifier": "b", "depend-on": ["missing"]}]}
        )


def test_depend_on_only_in_a_graph():
    with pytest.raises(BatchspecError, match="unknown key 'depend-on'"):
        parse_batchspec(
            {"build-list": [{"identifier": "a"}, {"identifier": "b", "depend-on": "a"}]}
        )


def test_build_matrix_is_the_product_of_its_axes():
    spec = parse_batchspec(
        {
            "build-matrix": {
                "static": {"ignore-failure": True, "env": {"privileged-mode": True}},
                "dynamic": {
                    "buildspec": ["one.yml", "two.yml"],
                    "env": {
                        "image": ["img/a:1", "img/b:2"],
                        "variables": {"MODE": ["fast", "slow"], "FIXED": "x"},
                    },
                },
            }
        }
    )
    assert spec.kind == batches.BUILD_MATRIX
    assert len(spec.tasks) == 8
    combos = {
        (t.buildspec, t.env.image, t.env.variables["MODE"], t.env.variables["FIXED"])
        for t in spec.tasks
    }
    assert len(combos) == 8
    assert ("two.yml", "img/b:2", "slow", "x") in combos
    assert all(t.ignore_failure and t.env.privileged_mode for t in spec.tasks)
    identifiers = [t.identifier for t in spec.tasks]
    assert len(set(identifiers)) == 8
    assert identifiers[0] == "build1_one_yml_img_a_1_fast_x"
    assert all(batches._IDENTIFIER.fullmatch(i) for i in identifiers)


def test_matrix_must_vary_something():
    with pytest.raises(BatchspecError, match="must vary something"):
        parse_batchspec({"build-matrix": {"dynamic": {}}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "no batch section"),
        ({}, "must contain one of build-list"),
        ({"build-list": [], "fast-fail": True}, "non-empty list"),
        ({"build-list": [{"identifier": "a"}], "build-graph": [{"identifier": "b"}]}, "only one"),
        ({"build-list": [{"identifier": "has space"}]}, "identifier is required"),
        ({"build-list": [{"buildspec": "x.yml"}]}, "identifier is required"),
        ({"build-list": [{"identifier": "a"}, {"identifier": "a"}]}, "used twice"),
        ({"build-list": [{"identifier": "a", "env": {"fleet": "f"}}]}, "fleets"),
        ({"build-list": [{"identifier": "a", "ignore-failure": "maybe"}]}, "true or false"),
        ({"build-fanout": {}}, "not supported"),
        ({"build-list": [{"identifier": "a"}], "colour": "red"}, "unknown key 'colour'"),
        ("build-list", "must be a mapping"),
    ],
)
def test_invalid_batch_sections(raw, message):
    with pytest.raises(BatchspecError, match=message):
        parse_batchspec(raw)


def test_restrictions():
    spec = parse_batchspec(
        {
            "build-list": [
                {"identifier": "a"},
                {"identifier": "b", "env": {"compute-type": "BUILD_GENERAL1_LARGE"}},
            ]
        }
    )
    check_restrictions(spec, None, "BUILD_GENERAL1_SMALL")
    check_restrictions(spec, {"maximumBuildsAllowed": 2}, "BUILD_GENERAL1_SMALL")
    with pytest.raises(BatchspecError, match="at most 1"):
        check_restrictions(spec, {"maximumBuildsAllowed": 1}, "BUILD_GENERAL1_SMALL")
    with pytest.raises(BatchspecError, match="b uses compute type BUILD_GENERAL1_LARGE"):
        check_restrictions(
            spec, {"computeTypesAllowed": ["BUILD_GENERAL1_SMALL"]}, "BUILD_GENERAL1_SMALL"
        )
    with pytest.raises(BatchspecError, match="a uses compute type BUILD_GENERAL1_MEDIUM"):
        check_restrictions(
            spec, {"computeTypesAllowed": ["BUILD_GENERAL1_LARGE"]}, "BUILD_GENERAL1_MEDIUM"
        )


# -- scheduling -----------------------------------------------------------------------
def graph(*states: tuple[str, str, tuple[str, ...]], ignore: tuple[str, ...] = ()):
    return [GroupState(name, status, deps, name in ignore) for name, status, deps in states]


def test_roots_start_first_and_dependants_wait():
    groups = graph(("a", "PENDING", ()), ("b", "PENDING", ("a",)), ("c", "PENDING", ()))
    step = plan_next(groups, fast_fail=False)
    assert step.start == ("a", "c") and step.batch_status is None


def test_dependants_start_when_dependencies_succeed():
    groups = graph(("a", "SUCCEEDED", ()), ("b", "PENDING", ("a",)), ("c", "PENDING", ("a", "b")))
    assert plan_next(groups, fast_fail=False).start == ("b",)


def test_failed_dependency_skips_dependants_and_fails_the_batch():
    groups = graph(("a", "FAILED", ()), ("b", "PENDING", ("a",)), ("c", "IN_PROGRESS", ()))
    step = plan_next(groups, fast_fail=False)
    assert step.skip == ("b",) and step.stop == () and step.batch_status is None
    done = graph(("a", "FAILED", ()), ("b", "SKIPPED", ("a",)), ("c", "SUCCEEDED", ()))
    assert plan_next(done, fast_fail=False).batch_status == "FAILED"


def test_ignored_failure_lets_dependants_run_and_the_batch_succeed():
    groups = graph(("a", "FAILED", ()), ("b", "PENDING", ("a",)), ignore=("a",))
    assert plan_next(groups, fast_fail=True).start == ("b",)
    done = graph(("a", "FAILED", ()), ("b", "SUCCEEDED", ("a",)), ignore=("a",))
    assert plan_next(done, fast_fail=True).batch_status == "SUCCEEDED"


def test_fast_fail_stops_running_builds_and_skips_the_rest():
    groups = graph(("a", "FAILED", ()), ("b", "IN_PROGRESS", ()), ("c", "PENDING", ()))
    step = plan_next(groups, fast_fail=True)
    assert step.stop == ("b",) and step.skip == ("c",) and step.start == ()
    assert step.batch_status is None  # b is still running
    ended = graph(("a", "FAILED", ()), ("b", "STOPPED", ()), ("c", "SKIPPED", ()))
    assert plan_next(ended, fast_fail=True).batch_status == "FAILED"


def test_without_fast_fail_others_keep_running():
    groups = graph(("a", "FAILED", ()), ("b", "IN_PROGRESS", ()), ("c", "PENDING", ()))
    step = plan_next(groups, fast_fail=False)
    assert step.stop == () and step.start == ("c",)


def test_stop_request_ends_as_stopped():
    groups = graph(("a", "IN_PROGRESS", ()), ("b", "PENDING", ("a",)))
    step = plan_next(groups, fast_fail=False, stop_requested=True)
    assert step.stop == ("a",) and step.skip == ("b",) and step.batch_status is None
    ended = graph(("a", "STOPPED", ()), ("b", "SKIPPED", ("a",)))
    assert plan_next(ended, fast_fail=False, stop_requested=True).batch_status == "STOPPED"


def test_all_succeeded():
    groups = graph(("a", "SUCCEEDED", ()), ("b", "SUCCEEDED", ("a",)))
    assert plan_next(groups, fast_fail=False).batch_status == "SUCCEEDED"


def test_timeout_stops_running_builds_and_ends_timed_out():
    groups = graph(("a", "SUCCEEDED", ()), ("b", "IN_PROGRESS", ()), ("c", "PENDING", ("a",)))
    step = plan_next(groups, fast_fail=False, timed_out=True)
    assert step.stop == ("b",) and step.skip == ("c",) and step.start == ()
    assert step.batch_status is None  # b has not stopped yet
    ended = graph(("a", "SUCCEEDED", ()), ("b", "STOPPED", ()), ("c", "SKIPPED", ("a",)))
    assert plan_next(ended, fast_fail=False, timed_out=True).batch_status == "TIMED_OUT"


def test_a_stop_request_wins_over_the_timeout():
    ended = graph(
        ("a", "STOPPED", ()),
    )
    step = plan_next(ended, fast_fail=False, stop_requested=True, timed_out=True)
    assert step.batch_status == "STOPPED"
