"""``GET /api/v1/tools`` and ``POST /api/v1/tools/execute``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tokenward.server.api.auth import scoped
from tokenward.server.api.errors import error_responses
from tokenward.server.container import Container


class ToolDescription(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]
    scopes: list[str]
    auth: str
    output: str


class ToolList(BaseModel):
    tools: list[ToolDescription]


class ExecuteToolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool_name: str = Field(min_length=1, max_length=128)
    connection_name: str = Field(min_length=1, max_length=64)
    identifier: str = Field(min_length=1, max_length=255)
    tool_input: dict[str, Any] = Field(default_factory=dict)


class ExecuteToolResponse(BaseModel):
    data: Any = Field(description="Discord's answer (null for an empty answer, e.g. a 204).")
    execution_id: str
    notes: list[str] = Field(
        default_factory=list,
        description="Remarks on the call, e.g. an input Discord no longer honours.",
    )


def tools_router(container: Container) -> APIRouter:
    """Include with the API-token dependency: ``app.include_router(r, dependencies=[...])``."""
    router = APIRouter(prefix="/api/v1/tools", tags=["tools"])

    listing: ToolList | None = None

    def build_listing() -> ToolList:
        # On the first call, not at start-up: it needs the whole catalog (loaded on first use).
        from tokenward.tools.schemas import agent_description, input_schema

        return ToolList(
            tools=[
                ToolDescription(
                    name=tool.name,
                    description=agent_description(tool),
                    input_schema=input_schema(tool),
                    annotations={
                        "read_only": tool.annotations.read_only,
                        "idempotent": tool.annotations.idempotent,
                        "destructive": tool.annotations.destructive,
                        "open_world": tool.annotations.open_world,
                        "deprecated": tool.annotations.deprecated,
                        "replaced_by": tool.annotations.replaced_by,
                    },
                    scopes=list(tool.scopes),
                    auth=tool.auth,
                    output=tool.output,
                )
                for tool in container.catalog.tools()
            ]
        )

    @router.get(
        "",
        response_model=ToolList,
        summary="List the tools",
        responses=error_responses(401),
        dependencies=[scoped("tools:execute")],
    )
    async def list_tools() -> ToolList:
        """Every tool with its description, JSON Schema input and annotations."""
        nonlocal listing
        if listing is None:
            listing = build_listing()
        return listing

    @router.post(
        "/execute",
        response_model=ExecuteToolResponse,
        summary="Execute a tool for a user",
        # 401 REAUTHORIZATION_REQUIRED, 403 MISSING_SCOPE or TOOL_NOT_ALLOWED (the connection's
        # allowed_tools), 404 unknown tool/connection/account,
        # 409 ACCOUNT_NOT_ACTIVE or BOT_TOKEN_REQUIRED, 429 and 502 from Discord's side; other
        # statuses Discord answered come back as PROVIDER_ERROR with that status ("default").
        responses=error_responses(400, 401, 403, 404, 409, 429, 502, "default"),
        dependencies=[scoped("tools:execute")],
    )
    async def execute_tool(body: ExecuteToolRequest) -> ExecuteToolResponse:
        """Run ``tool_name`` as the connected account (``connection_name``, ``identifier``): a
        ``discord_*`` tool on a ``discord`` connection, a ``discordbot_*`` tool on a
        ``discordbot`` one. Images come back as ``{"type": "image", "media_type", "data":
        base64}``; ``notes`` says what the caller should know about the call."""
        result = await container.runner.execute(
            body.tool_name,
            body.tool_input,
            connection_name=body.connection_name,
            identifier=body.identifier,
        )
        return ExecuteToolResponse(
            data=result.data_json(), execution_id=result.execution_id, notes=list(result.notes)
        )

    return router
