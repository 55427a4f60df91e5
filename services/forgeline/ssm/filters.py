"""Parameter Store filters: DescribeParameters' and GetParametersByPath's ParameterFilters,
and DescribeParameters' older Filters, checked once and then applied per parameter."""

from __future__ import annotations

import dataclasses

from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameterVersion

# Options each key accepts (first = default), as the SSM API reference lists them.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "Name": ("Equals", "BeginsWith", "Contains"),
    "Path": ("OneLevel", "Recursive"),
    "Type": ("Equals",),
    "KeyId": ("Equals",),
    "Tier": ("Equals",),
    "DataType": ("Equals",),
    "Label": ("Equals",),
    "tag": ("Equals",),
}
# The API reference: GetParametersByPath takes only these keys; DescribeParameters all but Label.
BY_PATH_KEYS = ("Type", "KeyId", "Label")


@dataclasses.dataclass(frozen=True)
class ParameterFilter:
    key: str  # "tag:<key>" for tags
    option: str
    values: tuple[str, ...]

    @property
    def needs_tags(self) -> bool:
        return self.key.startswith("tag:")

    def accepts(self, name: str, version: SsmParameterVersion, tags: dict[str, str]) -> bool:
        if self.needs_tags:
            tag_key = self.key.removeprefix("tag:")
            return tag_key in tags and (not self.values or tags[tag_key] in self.values)
        if self.key == "Name":
            return any(_name_matches(name, value, self.option) for value in self.values)
        if self.key == "Path":
            return any(_under(name, value, self.option == "Recursive") for value in self.values)
        if self.key == "Label":
            return bool(set(version.labels or []) & set(self.values))
        attribute = {
            "Type": version.type,
            "KeyId": version.key_id,
            "Tier": version.tier,
            "DataType": version.data_type,
        }[self.key]
        return attribute in self.values


def parse_filters(
    raw: list[shapes.ParameterStringFilter], *, by_path: bool
) -> list[ParameterFilter]:
    parsed = []
    for item in raw:
        key = item["Key"]
        family = "tag" if key.startswith("tag:") else key
        if by_path and family not in BY_PATH_KEYS:
            raise errors.InvalidFilterKey(
                f"The filter key {key} is not valid for GetParametersByPath. "
                f"Valid keys: {', '.join(BY_PATH_KEYS)}."
            )
        if not by_path and family == "Label":
            raise errors.InvalidFilterKey(
                "The filter key Label is valid for GetParametersByPath only, not DescribeParameters."
            )
        options = _OPTIONS.get(family)
        if options is None:
            raise errors.InvalidFilterKey(f"The filter key {key} is not valid.")
        option = item.get("Option") or options[0]
        if option not in options:
            raise errors.InvalidFilterOption(
                f"The filter option {option} is not valid for key {key}. "
                f"Valid options: {', '.join(options)}."
            )
        values = tuple(item.get("Values") or ())
        if not values and family != "tag":
            raise errors.InvalidFilterValue(f"The filter for key {key} needs at least one value.")
        if family == "Path" and not all(value.startswith("/") for value in values):
            raise errors.InvalidFilterValue(
                "The Path filter's values must be paths that begin with '/'."
            )
        parsed.append(ParameterFilter(key, option, values))
    return parsed


def legacy_filters(raw: list[shapes.ParametersFilter]) -> list[ParameterFilter]:
    """DescribeParameters' older Filters: Name matches by prefix, Type and KeyId exactly."""
    return [
        ParameterFilter(
            item["Key"], "BeginsWith" if item["Key"] == "Name" else "Equals", tuple(item["Values"])
        )
        for item in raw
    ]


def _name_matches(name: str, value: str, option: str) -> bool:
    if option == "BeginsWith":
        return name.startswith(value)
    if option == "Contains":
        return value in name
    return name == value


def _under(name: str, path: str, recursive: bool) -> bool:
    prefix = path if path.endswith("/") else path + "/"
    if not name.startswith(prefix):
        return False
    return recursive or "/" not in name[len(prefix) :]
