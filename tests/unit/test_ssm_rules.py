"""Parameter Store's pure rules: names, references with selectors, labels and filters."""

from __future__ import annotations

import pytest

from forgeline.ssm import parameters as ssm_parameters
from forgeline.ssm.filters import legacy_filters, parse_filters
from forgeline.ssm.generated import errors
from forgeline.ssm.tables import SsmParameterVersion

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.mark.parametrize(
    "name",
    ["plain", "with.dots-and_underscores", "/a", "/a/b/c", "/" + "/".join(["l"] * 15)],
)
def test_valid_names(name):
    ssm_parameters.check_name(ACCOUNT, REGION, name)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("a/b", errors.ValidationException),
        ("/a/", errors.ValidationException),
        ("/a//b", errors.ValidationException),
        ("sp ace", errors.ValidationException),
        ("colon:1", errors.ValidationException),
        ("AWS-thing", errors.ValidationException),
        ("/ssm/x", errors.ValidationException),
        ("/" + "/".join(["l"] * 16), errors.HierarchyLevelLimitExceededException),
        ("x" * 1000, errors.ValidationException),
    ],
)
def test_invalid_names(name, error):
    with pytest.raises(error):
        ssm_parameters.check_name(ACCOUNT, REGION, name)


def test_arn_drops_the_leading_slash():
    assert ssm_parameters.arn(ACCOUNT, REGION, "/a/b") == (
        "arn:aws:ssm:us-east-1:123456789012:parameter/a/b"
    )
    assert ssm_parameters.arn(ACCOUNT, REGION, "flat").endswith(":parameter/flat")


def test_references():
    plain = ssm_parameters.parse_reference(ACCOUNT, REGION, "/a/b")
    assert plain is not None and (plain.candidates, plain.selector) == (("/a/b",), None)
    versioned = ssm_parameters.parse_reference(ACCOUNT, REGION, "/a/b:3")
    assert versioned is not None and (versioned.version, versioned.label) == (3, None)
    labelled = ssm_parameters.parse_reference(ACCOUNT, REGION, "flat:prod")
    assert labelled is not None and (labelled.version, labelled.label) == (None, "prod")

    by_arn = ssm_parameters.parse_reference(
        ACCOUNT, REGION, "arn:aws:ssm:us-east-1:123456789012:parameter/a/b:2"
    )
    assert by_arn is not None and (by_arn.candidates, by_arn.version) == (("/a/b",), 2)
    # "parameter/flat" is the ARN of both "flat" and "/flat".
    flat = ssm_parameters.parse_reference(
        ACCOUNT, REGION, "arn:aws:ssm:us-east-1:123456789012:parameter/flat"
    )
    assert flat is not None and flat.candidates == ("flat", "/flat")
    for elsewhere in (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/a",
        "arn:aws:ssm:us-east-1:999999999999:parameter/a",
        "arn:aws:s3:us-east-1:123456789012:parameter/a",
        "arn:aws:ssm:us-east-1:123456789012:document/a",
    ):
        assert ssm_parameters.parse_reference(ACCOUNT, REGION, elsewhere) is None


@pytest.mark.parametrize(
    ("label", "problem"),
    [("prod", False), ("v1.2-beta_x", False), ("1st", True), ("awsy", True), ("a b", True)],
)
def test_label_rules(label, problem):
    assert ssm_parameters.label_problem(label) is problem


def version(**fields) -> SsmParameterVersion:
    defaults = dict(type="String", tier="Standard", data_type="text", labels=[], key_id=None)
    return SsmParameterVersion(**{**defaults, **fields})


def test_filters_apply_by_key_and_option():
    [one_level] = parse_filters([{"Key": "Path", "Values": ["/a"]}], by_path=False)
    assert one_level.accepts("/a/b", version(), {})
    assert not one_level.accepts("/a/b/c", version(), {})
    [recursive] = parse_filters(
        [{"Key": "Path", "Option": "Recursive", "Values": ["/a/"]}], by_path=False
    )
    assert recursive.accepts("/a/b/c", version(), {})
    assert not recursive.accepts("/ab/c", version(), {})

    [contains] = parse_filters(
        [{"Key": "Name", "Option": "Contains", "Values": ["mid"]}], by_path=False
    )
    assert contains.accepts("/x/amidst", version(), {})
    [tagged] = parse_filters([{"Key": "tag:team"}], by_path=False)
    assert tagged.needs_tags
    assert tagged.accepts("/x", version(), {"team": "any"})
    assert not tagged.accepts("/x", version(), {"other": "v"})
    [secure] = parse_filters([{"Key": "Type", "Values": ["SecureString"]}], by_path=True)
    assert secure.accepts("/x", version(type="SecureString"), {})
    assert not secure.accepts("/x", version(), {})

    [legacy] = legacy_filters([{"Key": "Name", "Values": ["/pre"]}])
    assert legacy.accepts("/prefix", version(), {})


@pytest.mark.parametrize(
    ("raw", "by_path", "error"),
    [
        ({"Key": "Name", "Values": ["x"]}, True, errors.InvalidFilterKey),
        ({"Key": "Path", "Values": ["/x"]}, True, errors.InvalidFilterKey),
        ({"Key": "Type", "Option": "Contains", "Values": ["x"]}, False, errors.InvalidFilterOption),
        ({"Key": "Path", "Option": "Equals", "Values": ["/x"]}, False, errors.InvalidFilterOption),
        ({"Key": "Path", "Values": ["relative"]}, False, errors.InvalidFilterValue),
        ({"Key": "Type"}, False, errors.InvalidFilterValue),
        ({"Key": "Bogus", "Values": ["x"]}, False, errors.InvalidFilterKey),
        ({"Key": "Label", "Values": ["x"]}, False, errors.InvalidFilterKey),
        ({"Key": "tag:team", "Values": ["x"]}, True, errors.InvalidFilterKey),
    ],
)
def test_filter_errors(raw, by_path, error):
    with pytest.raises(error):
        parse_filters([raw], by_path=by_path)
