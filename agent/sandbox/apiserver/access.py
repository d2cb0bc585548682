"""Who is calling and what they may do: bearer-token and client-certificate identities,
and an RBAC-shaped authorizer configurable per identity.

Pure data and matching; the server asks it once per request.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ADMIN_USER = "sandbox-admin"
ALL = "*"


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One RBAC PolicyRule: verbs on resources of API groups, optionally by name/namespace."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()  # empty: any namespace (a ClusterRole)

    @classmethod
    def of(
        cls,
        verbs: Iterable[str],
        api_groups: Iterable[str],
        resources: Iterable[str],
        resource_names: Iterable[str] = (),
        namespaces: Iterable[str] = (),
    ) -> Rule:
        return cls(
            frozenset(verbs),
            frozenset(api_groups),
            frozenset(resources),
            frozenset(resource_names),
            frozenset(namespaces),
        )

    def allows(self, request: AccessRequest) -> bool:
        def has(values: frozenset[str], wanted: str) -> bool:
            return ALL in values or wanted in values

        if not (has(self.verbs, request.verb) and has(self.api_groups, request.api_group)):
            return False
        if not has(self.resources, request.resource):
            return False
        if self.namespaces and request.namespace not in self.namespaces:
            return False
        # As in RBAC, a rule naming resources grants nothing to a request without a name: a
        # create, or a list or watch without a `metadata.name` field selector.
        return not self.resource_names or request.name in self.resource_names


@dataclass(frozen=True, slots=True)
class AccessRequest:
    verb: str
    api_group: str
    resource: str  # "clusterversions" or "clusterversions/status"
    namespace: str = ""
    name: str = ""


FULL_ACCESS = (Rule.of([ALL], [ALL], [ALL]),)


@dataclass
class AccessControl:
    """Tokens and client certificates map to identities; rules per user say what they may do."""

    tokens: dict[str, Identity] = field(default_factory=dict)
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)

    def add_user(
        self, user: str, token: str | None, rules: Iterable[Rule] = FULL_ACCESS
    ) -> Identity:
        identity = Identity(user)
        if token is not None:
            self.tokens[token] = identity
        self.rules[user] = tuple(rules)
        return identity

    def set_rules(self, user: str, rules: Iterable[Rule]) -> None:
        self.rules[user] = tuple(rules)

    def token_of(self, user: str) -> str | None:
        return next((token for token, who in self.tokens.items() if who.user == user), None)

    def token_for(self, user: str) -> str:
        """The user's bearer token, issued (with no rules yet) on first use."""
        token = self.token_of(user)
        if token is None:
            token = secrets.token_urlsafe(24)
            self.tokens[token] = Identity(user)
            self.rules.setdefault(user, ())
        return token

    def rotate_token(self, user: str) -> str:
        """Revoke every token of `user` and issue a new one; the rules stay."""
        for token in [token for token, who in self.tokens.items() if who.user == user]:
            del self.tokens[token]
        return self.token_for(user)

    def authenticate_token(self, token: str) -> Identity | None:
        for known, identity in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return identity
        return None

    def authorize(self, identity: Identity, request: AccessRequest) -> bool:
        return any(rule.allows(request) for rule in self.rules.get(identity.user, ()))

    @staticmethod
    def describe(identity: Identity, request: AccessRequest) -> str:
        """The message a real API server gives with 403 Forbidden."""
        scope = (
            f'in the namespace "{request.namespace}"'
            if request.namespace
            else "at the cluster scope"
        )
        return (
            f'User "{identity.user}" cannot {request.verb} resource "{request.resource}" '
            f'in API group "{request.api_group}" {scope}'
        )


def rules_from_mapping(spec: Mapping[str, Iterable[str]]) -> Rule:
    """Build a Rule from a dict like {"verbs": [...], "apiGroups": [...], "resources": [...]}."""
    return Rule.of(
        spec.get("verbs", ()),
        spec.get("apiGroups", ()),
        spec.get("resources", ()),
        spec.get("resourceNames", ()),
        spec.get("namespaces", ()),
    )
