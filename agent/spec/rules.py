"""The semantic rules of ClusterVersion's spec: the API reference and the CRD's CEL rules.

Pure. Called only after the shape walk, so every value here has its documented type;
a field with a type error is skipped rather than judged twice.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from agent.model import findings as rules
from agent.model.clusterversion_api import (
    ARCHITECTURES,
    BASELINE_CAPABILITY_SETS,
    CAPABILITIES,
    CAPABILITY_REQUIREMENTS,
    OVERRIDE_KEYS,
)
from agent.model.documents import ManifestDocument
from agent.model.findings import Finding
from agent.model.source import FieldPath, format_field_path
from agent.spec import formats
from agent.spec.suggest import closest


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


def check_spec_rules(doc: ManifestDocument, spec: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if _is_str(spec.get("clusterID")) and _visible(doc, ("spec", "clusterID"), out):
        _cluster_id(doc, spec["clusterID"], out)
    if _is_str(spec.get("channel")) and _visible(doc, ("spec", "channel"), out):
        _channel(doc, spec["channel"], out)
    if _is_str(spec.get("upstream")) and _visible(doc, ("spec", "upstream"), out):
        _upstream(doc, spec["upstream"], out)
    if isinstance(spec.get("desiredUpdate"), dict):
        _desired_update(doc, spec["desiredUpdate"], out)
    if isinstance(spec.get("overrides"), list):
        _overrides(doc, spec["overrides"], out)
    if isinstance(spec.get("capabilities"), dict):
        _capabilities(doc, spec["capabilities"], out)
    return out


def _visible(doc: ManifestDocument, path: FieldPath, out: list[Finding]) -> bool:
    """False, with a finding, when the string at `path` carries a hidden character: the API
    server keeps it, and nothing on the cluster's side is named with it."""
    value = _value_at(doc.body, path)
    problem = formats.invisible_problem(value)
    if problem is None:
        return True
    field = format_field_path(path)
    out.append(
        rules.VALUE_INVISIBLE_CHARACTERS.at(
            doc.at_value(path),
            f"{field} {value!r} {problem}, which the API server keeps as written",
            'remove it; a quoted "...\\n", a block scalar (| or >) or a pasted '
            "character puts it there",
            field,
        )
    )
    return False


def _value_at(body: dict[str, Any], path: FieldPath) -> str:
    value: Any = body
    for step in path:
        value = value[step]
    assert isinstance(value, str)
    return value


def _cluster_id(doc: ManifestDocument, value: str, out: list[Finding]) -> None:
    where = doc.at_value(("spec", "clusterID"))
    problem = formats.uuid_problem(value)
    if problem is not None:
        out.append(
            rules.CLUSTER_ID_FORMAT.at(
                where,
                f"clusterID {value!r} is not an RFC 4122 UUID: {problem}",
                "copy it from the cluster: oc get clusterversion version "
                "-o jsonpath='{.spec.clusterID}'",
                ".spec.clusterID",
            )
        )
        return
    version = formats.uuid_version(value)
    if version != 4:
        out.append(
            rules.CLUSTER_ID_VERSION.at(
                where,
                f"clusterID is a version {version} UUID; the cluster-version operator "
                "generates and expects version 4",
                "check that this is the cluster's own ID (oc get clusterversion version)",
                ".spec.clusterID",
            )
        )


def _channel(doc: ManifestDocument, value: str, out: list[Finding]) -> None:
    if formats.is_known_channel_form(value):
        return
    message = (
        "channel is empty, so the cluster retrieves no updates (RetrievedUpdates=False, "
        "reason NoChannel)"
        if value == ""
        else f"channel {value!r} does not look like an update channel such as stable-4.16, "
        "fast-4.16, candidate-4.16, eus-4.16 or OKD's stable-scos-4"
    )
    out.append(
        rules.CHANNEL_FORM.at(
            doc.at_value(("spec", "channel")),
            message,
            "check the name against the channels your update service publishes; a wrong "
            "channel leaves the cluster without updates (VersionNotFound)",
            ".spec.channel",
        )
    )


def _upstream(doc: ManifestDocument, value: str, out: list[Finding]) -> None:
    where = doc.at_value(("spec", "upstream"))
    problem = formats.url_problem(value)
    if problem is not None:
        out.append(
            rules.UPSTREAM_URL.at(
                where,
                f"upstream {value!r} is not an absolute URL: {problem}",
                "use the full URL of the update service, such as "
                "https://api.openshift.com/api/upgrades_info/v1/graph",
                ".spec.upstream",
            )
        )
        return
    scheme = formats.url_scheme(value)
    if scheme != "https":
        out.append(
            rules.UPSTREAM_NOT_HTTPS.at(
                where,
                f"upstream uses {scheme}://; update recommendations fetched without TLS can "
                "be altered on the way",
                "serve the update service over https",
                ".spec.upstream",
            )
        )


def _desired_update(doc: ManifestDocument, update: dict[str, Any], out: list[Finding]) -> None:
    base = ("spec", "desiredUpdate")
    image, version, arch = (update.get(key) for key in ("image", "version", "architecture"))
    typed = all(value is None or _is_str(value) for value in (image, version, arch))
    has_image, has_version, has_arch = (bool(value) for value in (image, version, arch))
    version_visible = _is_str(version) and _visible(doc, (*base, "version"), out)
    image_visible = _is_str(image) and _visible(doc, (*base, "image"), out)
    if _is_str(arch) and arch not in ARCHITECTURES:
        out.append(
            rules.ARCHITECTURE_VALUE.at(
                doc.at_value((*base, "architecture")),
                f"architecture {arch!r} is not allowed; valid values are 'Multi' and ''",
                "use architecture: Multi to move a single-architecture cluster to multi-"
                "architecture, or remove the field",
                ".spec.desiredUpdate.architecture",
            )
        )
    if typed:
        _desired_update_case(doc, has_image, has_version, has_arch, out)
    if has_version and _is_str(version) and version_visible and not formats.is_semver(version):
        out.append(
            rules.VERSION_SEMVER.at(
                doc.at_value((*base, "version")),
                f"version {version!r} is not a semantic version (such as 4.16.3, "
                "4.15.0-ec.2 or 4.19.0-okd-scos.16)",
                "write the full release version: major.minor.patch with an optional "
                "-prerelease suffix",
                ".spec.desiredUpdate.version",
            )
        )
    if has_image and _is_str(image) and image_visible:
        _image(doc, image, out)
    if update.get("force") is True:
        out.append(
            rules.FORCE_ENABLED.at(
                doc.at_value((*base, "force")),
                "force: true makes the operator skip release signature verification and "
                "the Upgradeable and other precondition checks",
                "remove force unless you verified the image yourself and accept running it "
                "with full cluster-admin rights",
                ".spec.desiredUpdate.force",
            )
        )


def _desired_update_case(
    doc: ManifestDocument, image: bool, version: bool, arch: bool, out: list[Finding]
) -> None:
    """The eight image/version/architecture cases of the API reference."""
    where = doc.at_key(("spec", "desiredUpdate"))
    field = ".spec.desiredUpdate"
    if image and arch:  # cases 1 and 3
        out.append(
            rules.DESIRED_UPDATE_IMAGE_AND_ARCHITECTURE.at(
                where,
                "desiredUpdate sets both image and architecture; the API server rejects "
                "this (cannot set both Architecture and Image)",
                "to move to multi-architecture give architecture: Multi with a version; "
                "otherwise give the image alone",
                field,
            )
        )
    elif arch and not version:  # case 7
        out.append(
            rules.DESIRED_UPDATE_ARCHITECTURE_NEEDS_VERSION.at(
                where,
                "desiredUpdate sets architecture without a version; the API server rejects "
                "this (Version must be set if Architecture is set)",
                "add the version to move to, such as version: 4.16.3",
                field,
            )
        )
    elif not (image or version or arch):  # case 8
        out.append(
            rules.DESIRED_UPDATE_EMPTY.at(
                where,
                "desiredUpdate names no target: set a version, an image, or a version with "
                "architecture: Multi",
                "add version: <release> (the operator resolves it from availableUpdates), "
                "or remove desiredUpdate",
                field,
            )
        )
    elif image and version:  # case 2
        out.append(
            rules.DESIRED_UPDATE_VERSION_IGNORED.at(
                where,
                "desiredUpdate sets both image and version; the operator uses the image, and "
                "the version must match the release inside it",
                "keep the version only if it is the image's release version",
                field,
            )
        )


def _image(doc: ManifestDocument, image: str, out: list[Finding]) -> None:
    where = doc.at_value(("spec", "desiredUpdate", "image"))
    if not formats.is_image_reference(image):
        out.append(
            rules.IMAGE_REFERENCE.at(
                where,
                f"image {image!r} is not a valid image pull spec",
                "use registry/repository@sha256:<digest>, such as "
                "quay.io/openshift-release-dev/ocp-release@sha256:...",
                ".spec.desiredUpdate.image",
            )
        )
    elif not formats.is_digest_pinned(image):
        out.append(
            rules.IMAGE_NOT_DIGEST.at(
                where,
                "image is not pinned by digest; a tag can be moved to another release",
                "use the @sha256: digest listed for the release in availableUpdates",
                ".spec.desiredUpdate.image",
            )
        )


def _overrides(doc: ManifestDocument, overrides: list[Any], out: list[Finding]) -> None:
    first_seen: dict[tuple[str, ...], int] = {}
    for index, entry in enumerate(overrides):
        if not isinstance(entry, dict) or not all(_is_str(entry.get(k)) for k in OVERRIDE_KEYS):
            continue
        key = tuple(entry[k] for k in OVERRIDE_KEYS)
        if key in first_seen:
            first = doc.at_value(("spec", "overrides", first_seen[key]))
            out.append(
                rules.OVERRIDE_DUPLICATE.at(
                    doc.at_value(("spec", "overrides", index)),
                    f"overrides[{index}] repeats kind/group/namespace/name "
                    f"{'/'.join(key)} of overrides[{first_seen[key]}] (line {first.line})",
                    "keep one entry per component; the API keys overrides by kind, group, "
                    "namespace and name",
                    f".spec.overrides[{index}]",
                )
            )
        else:
            first_seen[key] = index
    if overrides:
        out.append(
            rules.OVERRIDES_BLOCK_UPGRADES.at(
                doc.at_key(("spec", "overrides")),
                "any override makes the operator report Upgradeable=False "
                "(ClusterVersionOverridesSet), which blocks minor-version upgrades",
                "remove the overrides before a minor upgrade; z-stream updates still apply",
                ".spec.overrides",
            )
        )


def _capabilities(doc: ManifestDocument, caps: dict[str, Any], out: list[Finding]) -> None:
    base = ("spec", "capabilities")
    baseline = caps.get("baselineCapabilitySet")
    if _is_str(baseline) and baseline not in BASELINE_CAPABILITY_SETS:
        suggestion = closest(baseline, BASELINE_CAPABILITY_SETS)
        out.append(
            rules.CAPABILITY_BASELINE.at(
                doc.at_value((*base, "baselineCapabilitySet")),
                f"baselineCapabilitySet {baseline!r} is not one of "
                f"{', '.join(BASELINE_CAPABILITY_SETS)}",
                f'did you mean "{suggestion}"?' if suggestion else "use vCurrent or None",
                ".spec.capabilities.baselineCapabilitySet",
            )
        )
    additional = caps.get("additionalEnabledCapabilities")
    if not isinstance(additional, list):
        return
    for index, name in enumerate(additional):
        if _is_str(name) and name not in CAPABILITIES:
            suggestion = closest(name, CAPABILITIES)
            out.append(
                rules.CAPABILITY_UNKNOWN.at(
                    doc.at_value((*base, "additionalEnabledCapabilities", index)),
                    f"capability {name!r} is not one the API defines",
                    f'did you mean "{suggestion}"?'
                    if suggestion
                    else f"known capabilities: {', '.join(CAPABILITIES)}",
                    f".spec.capabilities.additionalEnabledCapabilities[{index}]",
                )
            )
    for needs, required in CAPABILITY_REQUIREMENTS.items():
        problem = _capability_requirement(doc, needs, required, baseline, additional)
        if problem is not None:
            out.append(problem)


def _capability_requirement(
    doc: ManifestDocument,
    needs: str,
    required: str,
    baseline: Any,
    additional: list[Any],
) -> Finding | None:
    """The CRD's CEL rule: with baseline None, `needs` requires `required`.

    The rule reads baselineCapabilitySet without checking it is set, so when it is absent
    the API server cannot evaluate the rule and rejects the object, whatever else is listed.
    """
    if needs not in additional:
        return None
    if baseline is not None and (baseline != "None" or required in additional):
        return None
    where = doc.at_value(
        ("spec", "capabilities", "additionalEnabledCapabilities", additional.index(needs))
    )
    if baseline is None:
        message = (
            f"{needs} is enabled but baselineCapabilitySet is not set: the API server's "
            f"rule for {needs} reads it and rejects the object when it is absent"
        )
        hint = f"set baselineCapabilitySet explicitly (vCurrent includes {required})"
    else:
        message = (
            f"the {needs} capability requires the {required} capability, which is not "
            "enabled with baselineCapabilitySet None"
        )
        hint = (
            f"add {required} to additionalEnabledCapabilities (the API server accepts its "
            "absence only when the live cluster already has it enabled implicitly)"
        )
    return rules.CAPABILITY_REQUIRES.at(
        where, message, hint, ".spec.capabilities.additionalEnabledCapabilities"
    )
