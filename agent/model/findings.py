"""Findings and the catalogue of rules that produce them.

Pure data. A rule's id is stable: scripts and CI configurations match on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.model.source import SourceLocation


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    summary: str

    def at(self, location: SourceLocation, message: str, hint: str, field: str = "") -> Finding:
        return Finding(self.id, self.severity, location, message, hint, field)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    location: SourceLocation
    message: str
    hint: str
    field: str = ""

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.file, self.location.line, self.location.column, self.rule)


E, W = Severity.ERROR, Severity.WARNING

# Files and YAML.
FILE_UNREADABLE = Rule("file-unreadable", E, "the file cannot be read")
FILE_TOO_LARGE = Rule("file-too-large", E, "the file is larger than 1 MiB")
FILE_NOT_UTF8 = Rule("file-not-utf8", E, "the file is not valid UTF-8")
FILE_EMPTY = Rule("file-empty", E, "the file holds no ClusterVersion")
SYMLINK_OUTSIDE_ROOT = Rule("symlink-outside-root", E, "a symlink points outside the scanned root")
YAML_SYNTAX = Rule("yaml-syntax", E, "the file is not valid YAML or JSON")
YAML_DUPLICATE_KEY = Rule("yaml-duplicate-key", E, "a mapping repeats a key")
YAML_ALIAS_EXPANSION = Rule("yaml-alias-expansion", E, "aliases expand into a huge structure")
YAML_UNSUPPORTED = Rule("yaml-unsupported", E, "a YAML feature the Kubernetes decoder rejects")
YAML_AMBIGUOUS_VALUE = Rule(
    "yaml-ambiguous-value", E, "an unquoted value kubectl (YAML 1.1) reads as a boolean or number"
)
YAML_AMBIGUOUS_KEY = Rule(
    "yaml-ambiguous-key",
    E,
    "an unquoted label or annotation key kubectl (YAML 1.1) reads as a boolean, number or null",
)
DOCUMENT_NOT_MAPPING = Rule("document-not-mapping", E, "a document is not a mapping")
DOCUMENT_OTHER_KIND = Rule("document-other-kind", E, "a document is not a ClusterVersion")

# Object shape.
API_VERSION = Rule("api-version", E, "apiVersion must be config.openshift.io/v1")
METADATA_NAME = Rule("metadata-name", E, "metadata.name must be version")
UNKNOWN_FIELD = Rule("unknown-field", E, "a field the API does not define")
FIELD_TYPE = Rule("field-type", E, "a value of the wrong type")
REQUIRED_FIELD = Rule("required-field", E, "a required field is missing")
NULL_VALUE = Rule("null-value", W, "a null value the API server drops")
NULL_LIST_ITEM = Rule("null-list-item", E, "a null list item, which the API server rejects")
STATUS_IGNORED = Rule("status-ignored", W, "status in a desired spec is ignored")
METADATA_SERVER_OWNED = Rule("metadata-server-owned", W, "server-owned metadata is ignored")

# spec fields.
VALUE_INVISIBLE_CHARACTERS = Rule(
    "value-invisible-characters", E, "control characters or surrounding whitespace in a value"
)
CLUSTER_ID_FORMAT = Rule("cluster-id-format", E, "clusterID is not an RFC 4122 UUID")
CLUSTER_ID_VERSION = Rule("cluster-id-version", W, "clusterID is not a version 4 UUID")
CHANNEL_FORM = Rule("channel-form", W, "channel does not look like a known channel")
UPSTREAM_URL = Rule("upstream-url", E, "upstream is not an absolute URL")
UPSTREAM_NOT_HTTPS = Rule("upstream-not-https", W, "upstream is not reached over https")
DESIRED_UPDATE_EMPTY = Rule("desired-update-empty", E, "desiredUpdate names no target")
DESIRED_UPDATE_IMAGE_AND_ARCHITECTURE = Rule(
    "desired-update-image-and-architecture", E, "desiredUpdate sets both image and architecture"
)
DESIRED_UPDATE_ARCHITECTURE_NEEDS_VERSION = Rule(
    "desired-update-architecture-needs-version", E, "desiredUpdate.architecture needs a version"
)
DESIRED_UPDATE_VERSION_IGNORED = Rule(
    "desired-update-version-ignored", W, "desiredUpdate sets image and version"
)
ARCHITECTURE_VALUE = Rule("architecture-value", E, "architecture must be Multi or empty")
VERSION_SEMVER = Rule("version-semver", E, "version is not a semantic version")
IMAGE_REFERENCE = Rule("image-reference", E, "image is not a valid image pull spec")
IMAGE_NOT_DIGEST = Rule("image-not-digest", W, "image is not pinned by digest")
FORCE_ENABLED = Rule("force-enabled", W, "desiredUpdate.force skips safety checks")
OVERRIDE_DUPLICATE = Rule("override-duplicate", E, "two overrides share kind/group/namespace/name")
OVERRIDES_BLOCK_UPGRADES = Rule("overrides-block-upgrades", W, "overrides block minor upgrades")
CAPABILITY_BASELINE = Rule("capability-baseline", E, "baselineCapabilitySet is not a known set")
CAPABILITY_UNKNOWN = Rule("capability-unknown", E, "a capability the API does not define")
CAPABILITY_REQUIRES = Rule("capability-requires", E, "a capability needs another one")

# Across files.
FLEET_DUPLICATE_CLUSTER_ID = Rule("fleet-duplicate-cluster-id", E, "two files share a clusterID")
FLEET_DUPLICATE_CLUSTER = Rule(
    "fleet-duplicate-cluster", E, "one cluster directory holds two ClusterVersions"
)
