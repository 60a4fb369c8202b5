"""The Blueprint: a named, versioned description of an image, kept by the backend.

Every change is a new version holding the whole body (never a patch), so any
version can be shown, exported or composed as it was. Its stream (in
image-builder-db) holds:

    Blueprint.create(blueprint_id, org_id, body)   # BlueprintCreated: version 1
    blueprint.add_version(body)                    # BlueprintVersionAdded: version n + 1
    blueprint.delete()                             # BlueprintDeleted

Bodies come validated (domain.blueprint_body); that names are unique within
an org is the application's rule, since it spans blueprints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from domain.events import DomainEvent


class BlueprintEvent(DomainEvent, frozen=True, kw_only=True):
    """An event of a blueprint's stream (the backend's own family)."""

    registry: ClassVar[dict[str, type[DomainEvent]]] = {}


class BlueprintCreated(BlueprintEvent, frozen=True, kw_only=True):
    blueprint_id: str
    org_id: str
    # Version 1, as validated: name, description, distribution, image_requests, customizations.
    body: dict[str, Any]


class BlueprintVersionAdded(BlueprintEvent, frozen=True, kw_only=True):
    version: int
    body: dict[str, Any]


class BlueprintDeleted(BlueprintEvent, frozen=True, kw_only=True):
    pass


class BlueprintRuleBroken(Exception):
    """A command that this blueprint's history does not allow."""


class UnknownVersion(LookupError):
    def __init__(self, blueprint_id: str, version: int, latest: int) -> None:
        super().__init__(f"blueprint {blueprint_id} has no version {version}; its versions are 1 to {latest}")
        self.blueprint_id = blueprint_id
        self.version = version


class Blueprint:
    def __init__(self) -> None:
        self.blueprint_id = ""
        self.org_id = ""
        # bodies[n - 1] is version n.
        self.bodies: list[dict[str, Any]] = []
        self.deleted = False
        # The stream's version (events applied), not the blueprint's.
        self.version = 0

    @classmethod
    def replay(cls, history: Iterable[DomainEvent]) -> Blueprint:
        blueprint = cls()
        for event in history:
            blueprint.apply(event)
        return blueprint

    @staticmethod
    def create(blueprint_id: str, org_id: str, body: dict[str, Any]) -> BlueprintCreated:
        _check_body(body)
        return BlueprintCreated(blueprint_id=blueprint_id, org_id=org_id, body=body)

    @property
    def latest_version(self) -> int:
        return len(self.bodies)

    @property
    def name(self) -> str:
        return str(self.bodies[-1]["name"])

    def body(self, version: int | None = None) -> dict[str, Any]:
        """The body of ``version`` (the latest when None)."""
        if version is None:
            return self.bodies[-1]
        if not 1 <= version <= self.latest_version:
            raise UnknownVersion(self.blueprint_id, version, self.latest_version)
        return self.bodies[version - 1]

    def add_version(self, body: dict[str, Any]) -> BlueprintVersionAdded:
        self._check_live()
        _check_body(body)
        return BlueprintVersionAdded(version=self.latest_version + 1, body=body)

    def delete(self) -> BlueprintDeleted:
        self._check_live()
        return BlueprintDeleted()

    def _check_live(self) -> None:
        if self.deleted:
            raise BlueprintRuleBroken(f"blueprint {self.blueprint_id} is deleted")

    def apply(self, event: DomainEvent) -> None:
        match event:
            case BlueprintCreated():
                self.blueprint_id, self.org_id, self.bodies = event.blueprint_id, event.org_id, [event.body]
            case BlueprintVersionAdded():
                if event.version != self.latest_version + 1:
                    raise ValueError(f"blueprint {self.blueprint_id}: version {event.version} follows {self.latest_version}")
                self.bodies.append(event.body)
            case BlueprintDeleted():
                self.deleted = True
            case _:
                raise TypeError(f"a blueprint does not apply {type(event).__name__}")
        self.version += 1


def _check_body(body: dict[str, Any]) -> None:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BlueprintRuleBroken("a blueprint needs a name")
    if not body.get("image_requests"):
        raise BlueprintRuleBroken("a blueprint needs at least one image request")
