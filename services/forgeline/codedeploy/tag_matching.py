"""Which on-premises instances a deployment group's tags select. Pure: no database.

AWS's rules: a tag filter is KEY_ONLY (the instance has a tag with that key),
VALUE_ONLY (a tag with that value, whatever its key) or KEY_AND_VALUE (that exact tag).
A filter list selects an instance that matches any filter of it (OR). A tag set is up to
three such lists and selects an instance that matches every list (AND of ORs). A group
uses either its filter list or its tag set, never both. Deregistered instances are never
targets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar


class TaggedInstance(Protocol):
    @property
    def tags(self) -> list[dict[str, str]]: ...

    @property
    def deregistered_at(self) -> dt.datetime | None: ...


Instance = TypeVar("Instance", bound=TaggedInstance)


def filter_matches(tag_filter: Mapping[str, Any], tags: Iterable[Mapping[str, str]]) -> bool:
    """Whether an instance with `tags` ([{Key, Value}]) matches one TagFilter/EC2TagFilter."""
    kind = tag_filter.get("Type") or _implied_type(tag_filter)
    key, value = tag_filter.get("Key"), tag_filter.get("Value")
    for tag in tags:
        if kind == "KEY_ONLY" and tag.get("Key") == key:
            return True
        if kind == "VALUE_ONLY" and tag.get("Value") == value:
            return True
        if kind == "KEY_AND_VALUE" and tag.get("Key") == key and tag.get("Value") == value:
            return True
    return False


def any_filter_matches(
    filters: Sequence[Mapping[str, Any]], tags: Iterable[Mapping[str, str]]
) -> bool:
    tags = list(tags)
    return any(filter_matches(tag_filter, tags) for tag_filter in filters)


def tag_set_matches(
    tag_set: Sequence[Sequence[Mapping[str, Any]]], tags: Iterable[Mapping[str, str]]
) -> bool:
    tags = list(tags)
    return bool(tag_set) and all(any_filter_matches(group, tags) for group in tag_set)


def matching_instances(
    group_document: Mapping[str, Any], instances: Iterable[Instance]
) -> list[Instance]:
    """The registered instances a deployment group's on-premises tags select, in the order
    given. A group with neither on-premises filters nor an on-premises tag set selects none."""
    filters = group_document.get("onPremisesInstanceTagFilters") or []
    tag_set = (group_document.get("onPremisesTagSet") or {}).get("onPremisesTagSetList") or []
    if not filters and not tag_set:
        return []
    selected = []
    for instance in instances:
        if instance.deregistered_at is not None:
            continue
        if (
            tag_set_matches(tag_set, instance.tags)
            if tag_set
            else any_filter_matches(filters, instance.tags)
        ):
            selected.append(instance)
    return selected


def _implied_type(tag_filter: Mapping[str, Any]) -> str:
    """A filter that names no Type means what it gives: a key, a value, or both."""
    has_key, has_value = bool(tag_filter.get("Key")), bool(tag_filter.get("Value"))
    if has_key and has_value:
        return "KEY_AND_VALUE"
    return "KEY_ONLY" if has_key else "VALUE_ONLY"
