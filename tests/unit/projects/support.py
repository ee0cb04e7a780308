"""A small world for project tests: users, a shared project with every role, and callers."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from adapters.memory.events import RecordingEventPublisher
from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from domain.auth import Scope
from domain.projects import Membership, Project, Role
from domain.task_tree import TaskNode
from domain.tasks import Task
from domain.use_cases import projects as uc
from domain.use_cases import tasks as tasks_uc
from domain.users import User
from tests.unit.tasks.fakes import T0, FakeClock, SequentialIds, make_task

ALL = frozenset(
    {
        Scope.TASKS_READ,
        Scope.TASKS_WRITE,
        Scope.KEYS_MANAGE,
        Scope.PROJECTS_READ,
        Scope.PROJECTS_WRITE,
        Scope.WEBHOOKS_MANAGE,
    }
)
TASKS_ONLY = frozenset({Scope.TASKS_READ, Scope.TASKS_WRITE})
READ_ONLY = frozenset({Scope.TASKS_READ, Scope.PROJECTS_READ})


@dataclass(frozen=True)
class Who:
    """A caller as the access policy sees it."""

    user_id: str
    scopes: Set[str] = ALL
    project_ids: Set[str] | None = None


@dataclass
class World:
    database: MemoryDatabase = field(default_factory=MemoryDatabase)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    events: RecordingEventPublisher = field(default_factory=RecordingEventPublisher)

    def uow(self) -> MemoryProjectUnitOfWork:
        return MemoryProjectUnitOfWork(self.database)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        MemoryProjectUnitOfWork(self.database)  # makes sure the project tables exist
        return {name: dict(rows) for name, rows in self.database.tables.items()}

    def user(self, name: str) -> User:
        user_id = self.ids.new_id()
        user = User(user_id, f"{name}@example.com", name.title(), "hash", T0)
        self.database.tables["users"][user_id] = user
        return user

    def project(self, name: str = "Shared", *, inbox: bool = False) -> Project:
        self.clock.advance()
        now = self.clock.now()
        project = Project(self.ids.new_id(), name, None, inbox, now, now, 1)
        self.uow()
        self.database.tables["projects"][project.id] = project
        return project

    def join(self, project: Project, user: User, role: Role) -> Membership:
        self.clock.advance()
        membership = Membership(project.id, user.id, role, self.clock.now())
        self.database.tables["memberships"][f"{project.id}/{user.id}"] = membership
        return membership

    def task(
        self, project: Project, parent: str | None = None, assignee: str | None = None
    ) -> TaskNode:
        node = TaskNode(self.ids.new_id(), project.id, parent, assignee)
        self.clock.advance()
        self.database.tables["tasks"][node.id] = make_task(
            node.id,
            owner_id="creator",
            project_id=project.id,
            parent_id=parent,
            assignee_id=assignee,
            created_at=self.clock.now(),
        )
        return node

    # use cases
    @property
    def create_project(self) -> uc.CreateProject:
        return uc.CreateProject(self.uow, self.clock, self.ids)

    @property
    def list_projects(self) -> uc.ListProjects:
        return uc.ListProjects(self.uow)

    @property
    def get_project(self) -> uc.GetProject:
        return uc.GetProject(self.uow)

    @property
    def update_project(self) -> uc.UpdateProject:
        return uc.UpdateProject(self.uow, self.clock, ids=self.ids)

    @property
    def delete_project(self) -> uc.DeleteProject:
        return uc.DeleteProject(self.uow, clock=self.clock, ids=self.ids)

    @property
    def list_members(self) -> uc.ListMembers:
        return uc.ListMembers(self.uow)

    @property
    def add_member(self) -> uc.AddMember:
        return uc.AddMember(self.uow, self.clock, ids=self.ids)

    @property
    def update_member(self) -> uc.UpdateMember:
        return uc.UpdateMember(self.uow, clock=self.clock, ids=self.ids)

    @property
    def remove_member(self) -> uc.RemoveMember:
        return uc.RemoveMember(self.uow, self.clock, ids=self.ids)

    @property
    def create_comment(self) -> uc.CreateComment:
        return uc.CreateComment(self.uow, self.clock, self.ids)

    @property
    def list_comments(self) -> uc.ListComments:
        return uc.ListComments(self.uow)

    @property
    def delete_comment(self) -> uc.DeleteComment:
        return uc.DeleteComment(self.uow, clock=self.clock, ids=self.ids)

    @property
    def create_task(self) -> tasks_uc.CreateTask:
        return tasks_uc.CreateTask(self.uow, self.clock, self.ids, self.events)

    @property
    def get_task(self) -> tasks_uc.GetTask:
        return tasks_uc.GetTask(self.uow)

    @property
    def list_tasks(self) -> tasks_uc.ListTasks:
        return tasks_uc.ListTasks(self.uow)

    @property
    def update_task(self) -> tasks_uc.UpdateTask:
        return tasks_uc.UpdateTask(self.uow, self.clock, self.events, ids=self.ids)

    @property
    def delete_task(self) -> tasks_uc.DeleteTask:
        return tasks_uc.DeleteTask(self.uow, self.clock, self.events, ids=self.ids)

    def stored(self, task_id: str) -> Task:
        stored: Task = self.database.tables["tasks"][task_id]
        return stored

    @property
    def create_inbox(self) -> uc.CreateInbox:
        return uc.CreateInbox(self.uow, self.clock, self.ids)


@dataclass
class Team:
    """A shared project P with an owner, an editor and a viewer; an outsider with a project of
    their own; and Q, a second project of the owner (the "outside" of a restricted key)."""

    world: World
    owner: User
    editor: User
    viewer: User
    outsider: User
    project: Project
    other: Project
    outsiders_project: Project

    def caller(self, name: str) -> Who:
        """Callers of the role matrix, by name."""
        p, q = self.project.id, self.other.id
        return {
            "owner": Who(self.owner.id),
            "editor": Who(self.editor.id),
            "viewer": Who(self.viewer.id),
            "non_member": Who(self.outsider.id),
            "key_inside": Who(self.owner.id, project_ids=frozenset({p})),
            "key_outside": Who(self.owner.id, project_ids=frozenset({q})),
            "key_tasks_only": Who(self.owner.id, scopes=TASKS_ONLY),
            "key_read_only": Who(self.owner.id, scopes=READ_ONLY),
        }[name]


def team(world: World | None = None) -> Team:
    world = world or World()
    owner, editor, viewer, outsider = (world.user(n) for n in ("olive", "eddie", "vera", "oscar"))
    project = world.project("Shared")
    world.join(project, owner, Role.OWNER)
    world.join(project, editor, Role.EDITOR)
    world.join(project, viewer, Role.VIEWER)
    other = world.project("Owner's other")
    world.join(other, owner, Role.OWNER)
    outsiders = world.project("Oscar's")
    world.join(outsiders, outsider, Role.OWNER)
    return Team(world, owner, editor, viewer, outsider, project, other, outsiders)
