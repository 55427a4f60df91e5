"""CodeCommit's page sizes: every maxResults/MaxResults member follows one rule."""

from __future__ import annotations

from forgeline.codecommit.generated import errors
from forgeline.core.pagination import page_size


def max_results(
    value: int | None, *, default: int, maximum: int, member: str = "maxResults"
) -> int:
    """Absent: `default`; above `maximum`: the maximum; below 1: InvalidMaxResultsException."""
    return page_size(
        value,
        default=default,
        maximum=maximum,
        member=member,
        invalid=errors.InvalidMaxResultsException,
    )
