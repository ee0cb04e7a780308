"""Projects and their members over HTTP: parse, call one use case, map.

Who may do what (scopes, membership, roles, restricted keys) is the access policy's business,
reached through the use cases: these handlers check nothing themselves. ETags name the project
and its version (adapters.http.conditional); creation is idempotent with an `Idempotency-Key`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import current_principal, principal_guard
from adapters.http.bodies import MERGE_PATCH_TYPES, decode_body
from adapters.http.conditional import etag_of, expected_version, not_modified
from adapters.http.openapi import PROBLEMS, documented_body, documented_headers
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, patch, post
from adapters.http.schemas import (
    MemberCreate,
    MemberList,
    MemberOut,
    MemberPatch,
    ProjectCreate,
    ProjectList,
    ProjectOut,
    ProjectPatch,
)
from adapters.http.services import services
from domain.projects import Member, ProjectDraft, ProjectView

_encoder = msgspec.json.Encoder()

ProjectId = Annotated[str, PathParameter(description="The project's id.")]
MemberId = Annotated[str, PathParameter(description="The member's user id.")]
NOT_MODIFIED = {304: ResponseSpec(None, description="Not modified: the ETag still matches")}


def project_out(view: ProjectView) -> ProjectOut:
    project = view.project
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        inbox=project.inbox,
        role=view.role,
        created_at=project.created_at,
        updated_at=project.updated_at,
        version=project.version,
    )


def project_response(
    view: ProjectView, status: int = 200, extra: dict[str, str] | None = None
) -> EncodedJson:
    """The project as JSON with its ETag."""
    headers = {"ETag": etag_of(view.project.id, view.project.version), **(extra or {})}
    return EncodedJson(_encoder.encode(project_out(view)), status_code=status, headers=headers)


def member_out(member: Member) -> MemberOut:
    return MemberOut(
        user_id=member.membership.user_id,
        email=member.email,
        name=member.name,
        role=member.membership.role,
        added_at=member.membership.added_at,
    )


def _changes(body: msgspec.Struct) -> dict[str, object]:
    """The fields a merge patch names (`None` included: it clears)."""
    return {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not msgspec.UNSET
    }


class ProjectsController(Controller):
    path = "/v1/projects"
    tags = ["projects"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        idempotent=True,
        status_code=HTTP_201_CREATED,
        operation_id="createProject",
        summary="Create a project (the caller is its owner)",
        description="Needs projects:write; 403 for a key restricted to projects. With "
        "`Idempotency-Key`, a repeat with the same body returns the first answer "
        "(`Idempotent-Replayed: true`) for 24 h; the same key with another body (or on another "
        "route) is 422; a repeat while the first is still running is 409.",
        opt={
            **documented_body(ProjectCreate),
            **documented_headers({201: ("ETag", "Location", "Idempotent-Replayed")}),
        },
        responses=PROBLEMS(403, 409),
    )
    async def create(self, request: Request[Any, Any, Any]) -> Response[ProjectOut]:
        body = await decode_body(request, ProjectCreate)
        view = (
            await services(request)
            .create_project()
            .execute(
                current_principal(request),
                ProjectDraft(name=body.name, description=body.description),
            )
        )
        root = str(request.scope.get("root_path", ""))
        location = f"{root}/v1/projects/{view.project.id}"
        return project_response(view, HTTP_201_CREATED, {"Location": location})

    @get(
        "/",
        operation_id="listProjects",
        summary="List the projects you are a member of, oldest first",
        description="Needs projects:read. Oldest first (created_at, then id), each with your "
        "role. A key restricted to projects sees only its projects.",
        responses=PROBLEMS(403),
    )
    async def list_projects(self, request: Request[Any, Any, Any]) -> Response[ProjectList]:
        views = await services(request).list_projects().execute(current_principal(request))
        body = ProjectList(items=[project_out(v) for v in views])
        return EncodedJson(_encoder.encode(body))

    @get(
        "/{project_id:str}",
        operation_id="getProject",
        summary="Get a project",
        description="Any member (projects:read). `If-None-Match` with the current ETag answers "
        "304. 404 for a project you are not a member of (or your key does not reach).",
        opt=documented_headers({200: ("ETag",), 304: ("ETag",)}),
        responses={**NOT_MODIFIED, **PROBLEMS(403, 404)},
    )
    async def get_project(
        self,
        request: Request[Any, Any, Any],
        project_id: ProjectId,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[ProjectOut]:
        view = await services(request).get_project().execute(current_principal(request), project_id)
        tag = etag_of(view.project.id, view.project.version)
        if not_modified(if_none_match, tag):
            unchanged: Response[Any] = Response(b"", status_code=304, headers={"ETag": tag})
            return unchanged
        return project_response(view)

    @patch(
        "/{project_id:str}",
        operation_id="updateProject",
        summary="Rename or describe a project (JSON merge patch)",
        description="Owners only (projects:write); an inbox may be renamed. "
        "`application/merge-patch+json` or `application/json`: `null` clears the description; "
        "null for the name is 422. `If-Match` with a stale ETag is 412; 409 when another writer "
        "changed the project meanwhile and no `If-Match` was sent.",
        opt={
            **documented_body(ProjectPatch, ("application/merge-patch+json", "application/json")),
            **documented_headers({200: ("ETag",)}),
        },
        responses=PROBLEMS(403, 404, 409, 412),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        project_id: ProjectId,
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[ProjectOut]:
        body = await decode_body(request, ProjectPatch, MERGE_PATCH_TYPES)
        view = (
            await services(request)
            .update_project()
            .execute(
                current_principal(request),
                project_id,
                _changes(body),
                expected_version(if_match, project_id),
            )
        )
        return project_response(view)

    @delete(
        "/{project_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteProject",
        summary="Delete a project for good, with its tasks and their comments",
        description="Owners only (projects:write). An inbox cannot be deleted (409). `If-Match` "
        "with a stale ETag is 412.",
        responses=PROBLEMS(403, 404, 409, 412),
    )
    async def delete_project(
        self,
        request: Request[Any, Any, Any],
        project_id: ProjectId,
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> None:
        await (
            services(request)
            .delete_project()
            .execute(current_principal(request), project_id, expected_version(if_match, project_id))
        )

    # --- members ---------------------------------------------------------------------------------

    @get(
        "/{project_id:str}/members",
        operation_id="listMembers",
        summary="List a project's members: owners first, then by added_at",
        description="Any member (projects:read).",
        responses=PROBLEMS(403, 404),
    )
    async def list_members(
        self, request: Request[Any, Any, Any], project_id: ProjectId
    ) -> Response[MemberList]:
        members = (
            await services(request).list_members().execute(current_principal(request), project_id)
        )
        body = MemberList(items=[member_out(m) for m in members])
        return EncodedJson(_encoder.encode(body))

    @post(
        "/{project_id:str}/members",
        idempotent=True,
        status_code=HTTP_201_CREATED,
        operation_id="addMember",
        summary="Add a member by e-mail",
        description="Owners only (projects:write). 422 on `email` when no user has that "
        "address; 409 when the user is already a member, or the project is an inbox (an inbox "
        "is never shared). `Idempotency-Key` works as on `POST /v1/projects`.",
        opt={
            **documented_body(MemberCreate),
            **documented_headers({201: ("Idempotent-Replayed",)}),
        },
        responses=PROBLEMS(403, 404, 409),
    )
    async def add_member(
        self, request: Request[Any, Any, Any], project_id: ProjectId
    ) -> Response[MemberOut]:
        body = await decode_body(request, MemberCreate)
        member = (
            await services(request)
            .add_member()
            .execute(current_principal(request), project_id, body.email, body.role)
        )
        return EncodedJson(_encoder.encode(member_out(member)), status_code=HTTP_201_CREATED)

    @patch(
        "/{project_id:str}/members/{user_id:str}",
        operation_id="updateMember",
        summary="Change a member's role",
        description="Owners only (projects:write). Demoting the last owner is 409.",
        opt=documented_body(MemberPatch, ("application/merge-patch+json", "application/json")),
        responses=PROBLEMS(403, 404, 409),
    )
    async def update_member(
        self, request: Request[Any, Any, Any], project_id: ProjectId, user_id: MemberId
    ) -> Response[MemberOut]:
        body = await decode_body(request, MemberPatch, MERGE_PATCH_TYPES)
        member = (
            await services(request)
            .update_member()
            .execute(current_principal(request), project_id, user_id, body.role)
        )
        return EncodedJson(_encoder.encode(member_out(member)))

    @delete(
        "/{project_id:str}/members/{user_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="removeMember",
        summary="Remove a member, or leave a project",
        description="Owners remove anyone; any member may remove themself (projects:write). "
        "The last owner cannot leave (409). The removed user's assignments in the project are "
        "cleared.",
        responses=PROBLEMS(403, 404, 409),
    )
    async def remove_member(
        self, request: Request[Any, Any, Any], project_id: ProjectId, user_id: MemberId
    ) -> None:
        await (
            services(request)
            .remove_member()
            .execute(current_principal(request), project_id, user_id)
        )
