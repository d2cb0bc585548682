"""Credentials a sandbox with a state directory keeps across restarts: every user's bearer
tokens and rules, so a client connected before a restart (or a kill -9) carries on after it.

I/O: one JSON file in the state directory, readable by its owner only, replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.sandbox.apiserver.access import (
    FULL_ACCESS,
    AccessControl,
    Identity,
    Rule,
    rules_from_mapping,
)

CREDENTIALS_FILE = "credentials.json"


@dataclass
class KeptAccessControl(AccessControl):
    """AccessControl that writes itself to `path` after every change made through it."""

    path: Path | None = None

    @classmethod
    def kept_in(cls, state_dir: Path) -> KeptAccessControl:
        """What `state_dir` holds, or nothing yet; written there from now on."""
        state_dir.mkdir(parents=True, exist_ok=True)
        kept = cls(path=state_dir / CREDENTIALS_FILE)
        if kept.path is not None and kept.path.exists():
            document = json.loads(kept.path.read_text())
            for entry in document.get("tokens", []):
                kept.tokens[entry["token"]] = Identity(entry["user"], tuple(entry["groups"]))
            for user, rules in document.get("rules", {}).items():
                kept.rules[user] = tuple(rules_from_mapping(rule) for rule in rules)
        return kept

    def add_user(
        self, user: str, token: str | None, rules: Iterable[Rule] = FULL_ACCESS
    ) -> Identity:
        identity = super().add_user(user, token, rules)
        self._save()
        return identity

    def set_rules(self, user: str, rules: Iterable[Rule]) -> None:
        super().set_rules(user, rules)
        self._save()

    def token_for(self, user: str) -> str:
        known = self.token_of(user)
        if known is not None:
            return known
        token = super().token_for(user)
        self._save()
        return token

    def rotate_token(self, user: str) -> str:
        token = super().rotate_token(user)
        self._save()
        return token

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "tokens": [
                {"token": token, "user": who.user, "groups": list(who.groups)}
                for token, who in self.tokens.items()
            ],
            "rules": {user: [_mapping(r) for r in rules] for user, rules in self.rules.items()},
        }
        partial = self.path.with_suffix(".tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(document))
        os.replace(partial, self.path)


def _mapping(rule: Rule) -> dict[str, Any]:
    """A Rule in the shape `rules_from_mapping` reads (RBAC PolicyRule field names)."""
    return {
        "verbs": sorted(rule.verbs),
        "apiGroups": sorted(rule.api_groups),
        "resources": sorted(rule.resources),
        "resourceNames": sorted(rule.resource_names),
        "namespaces": sorted(rule.namespaces),
    }
