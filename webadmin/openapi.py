"""The OpenAPI 3.0 description of ``/api/v1`` (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from vpop3d import __version__
from webadmin import views_collectors as collectors
from webadmin import views_sharing as sharing

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Refused; the error says why",
        401: "Not logged in",
        403: "Not an administrator, or CSRF token missing",
        404: "Not found",
        413: "Body too large",
    }
    return {str(c): _json(ERROR, words[c]) for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema["minimum"] = 0
    else:
        schema["pattern"] = "^[A-Za-z0-9._-]+$"
    return {"name": name, "in": "path", "required": True, "schema": schema}


NO_CONTENT = {"204": {"description": "Done"}}
STD = (401, 403)

_QUERY = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in (
        ("sort", "name, group, messages, size, comments, enabled or admin"),
        ("dir", "asc or desc"),
        ("name", "substring of the account name"),
        ("group", "group name; '-' for users without a group"),
        ("messages", "Inbox messages: n, >n, <n, >=n, <=n or x..y"),
        ("size", "mailbox size in bytes: n, >n, <n, >=n, <=n or x..y"),
        ("comments", "substring of the comments"),
    )
] + [
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer"}},
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "User": {
        "type": "object",
        "required": ["name", "real_name", "enabled", "is_admin", "quota_kb"],
        "properties": {
            "name": {"type": "string"},
            "real_name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "is_admin": {"type": "boolean"},
            "quota_kb": {"type": "integer"},
            "must_change_password": {"type": "boolean"},
            "primary_group_id": {"type": "integer", "nullable": True},
            "allow_send_internet": {"type": "boolean"},
            "allow_receive_internet": {"type": "boolean"},
        },
    },
    "UserRow": {
        "type": "object",
        "required": ["name", "real_name", "group", "messages", "size", "enabled", "is_admin"],
        "properties": {
            "name": {"type": "string"},
            "real_name": {"type": "string"},
            "group": {"type": "string"},
            "messages": {"type": "integer"},
            "size": {"type": "integer"},
            "enabled": {"type": "boolean"},
            "is_admin": {"type": "boolean"},
            "quota_kb": {"type": "integer"},
        },
    },
    "NewUser": {
        "type": "object",
        "required": ["name", "password"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,32}$"},
            "password": {"type": "string", "minLength": 5, "pattern": "^[^ ]*$"},
            "real_name": {"type": "string", "maxLength": 80},
            "is_admin": {"type": "boolean"},
            "quota_kb": {"type": "integer", "minimum": 0},
        },
    },
    "UserChanges": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "real_name": {"type": "string", "maxLength": 80},
            "enabled": {"type": "boolean"},
            "is_admin": {"type": "boolean"},
            "quota_kb": {"type": "integer", "minimum": 0},
            "allow_send_internet": {"type": "boolean"},
            "allow_receive_internet": {"type": "boolean"},
        },
    },
    "Domain": {
        "type": "object",
        "required": ["name", "default"],
        "properties": {"name": {"type": "string"}, "default": {"type": "boolean"}},
    },
    "Mapping": {
        "type": "object",
        "required": ["id", "pattern", "targets", "direction", "enabled"],
        "properties": {
            "id": {"type": "integer"},
            "pattern": {"type": "string"},
            "targets": {"type": "array", "items": {"type": "string"}},
            "direction": {"type": "string", "enum": ["to", "from"]},
            "enabled": {"type": "boolean"},
        },
    },
    "NewMapping": {
        "type": "object",
        "required": ["pattern", "targets"],
        "additionalProperties": False,
        "properties": {
            "pattern": {"type": "string"},
            "targets": {"type": "array", "items": {"type": "string"}},
            "direction": {"type": "string", "enum": ["to", "from"]},
        },
    },
    "Group": {
        "type": "object",
        "required": ["id", "name", "enabled", "force", "user_count"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "force": {"type": "boolean"},
            "in_everyone": {"type": "boolean", "nullable": True},
            "allow_send_internet": {"type": "boolean", "nullable": True},
            "allow_receive_internet": {"type": "boolean", "nullable": True},
            "monitor": {"type": "boolean", "nullable": True},
            "admin": {"type": "boolean", "nullable": True},
            "max_outgoing_kb": {"type": "integer"},
            "reply_address": {"type": "string"},
            "user_count": {"type": "integer"},
        },
    },
    "GroupChanges": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean"},
            "force": {"type": "boolean"},
            "in_everyone": {"type": "boolean", "nullable": True},
            "allow_send_internet": {"type": "boolean", "nullable": True},
            "allow_receive_internet": {"type": "boolean", "nullable": True},
            "monitor": {"type": "boolean", "nullable": True},
            "admin": {"type": "boolean", "nullable": True},
            "max_outgoing_kb": {"type": "integer", "minimum": 0, "maximum": 2147483647},
            "reply_address": {"type": "string"},
        },
    },
    "QueueEntry": {
        "type": "object",
        "required": ["id", "kind", "sender", "size", "created_at", "recipients"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "sender": {"type": "string"},
            "size": {"type": "integer"},
            "created_at": {"type": "number"},
            "recipients": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "address": {"type": "string"},
                        "state": {"type": "string"},
                        "attempts": {"type": "integer"},
                        "last_error": {"type": "string", "nullable": True},
                    },
                },
            },
        },
    },
    "AccessRule": {
        "type": "object",
        "required": ["allow", "type"],
        "properties": {
            "allow": {"type": "boolean"},
            "type": {
                "type": "string",
                "enum": [
                    "network",
                    "routers",
                    "local-nets",
                    "geoip",
                    "any-ipv4",
                    "any-ipv6",
                    "any",
                ],
            },
            "address": {"type": "string", "description": "CIDR for network, tags for geoip"},
            "allow_unauth": {"type": "boolean"},
            "users": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AccessTable": {
        "type": "object",
        "required": ["table", "default", "rules"],
        "properties": {
            "table": {"type": "string"},
            "default": {"type": "boolean"},
            "use_global": {"type": "boolean"},
            "rules": {"type": "array", "items": {"$ref": "#/components/schemas/AccessRule"}},
        },
    },
    "AccessChanges": {
        "type": "object",
        "required": ["rules"],
        "additionalProperties": False,
        "properties": {
            "rules": {"type": "array", "items": {"$ref": "#/components/schemas/AccessRule"}},
            "use_global": {"type": "boolean"},
        },
    },
    "UserImport": {
        "type": "object",
        "required": ["csv"],
        "additionalProperties": False,
        "properties": {
            "csv": {"type": "string"},
            "passwords": {"type": "string", "enum": ["file", "username", "text"]},
            "ignore_first_line": {"type": "boolean"},
            "update_existing": {"type": "boolean"},
            "remove_missing": {"type": "boolean"},
        },
    },
    "ImportResult": {
        "type": "object",
        "required": ["created", "updated", "skipped", "deleted", "ignored_columns"],
        "properties": {
            k: {"type": "array", "items": {"type": "string"}}
            for k in ("created", "updated", "skipped", "deleted", "ignored_columns")
        },
    },
    "LocalMail": {
        "type": "object",
        "required": ["implied_mapping"],
        "additionalProperties": False,
        "properties": {"implied_mapping": {"type": "boolean"}},
    },
}


def _paths() -> dict[str, Any]:
    users = {"type": "array", "items": _ref("UserRow")}
    return {
        "/dashboard": {
            "get": _op(
                "Counts for the dashboard", {"200": _json({"type": "object"})} | _errors(*STD)
            )
        },
        "/users": {
            "get": _op(
                "One page of the Users grid (server-side sort and filter)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["total", "defined", "users"],
                            "properties": {
                                "total": {"type": "integer"},
                                "defined": {"type": "integer"},
                                "users": users,
                            },
                        }
                    )
                }
                | _errors(400, *STD),
                parameters=_QUERY,
            ),
            "post": _op(
                "Add a user",
                {"201": _json(_ref("User"), "Created")} | _errors(400, *STD, 413),
                requestBody=_body(_ref("NewUser")),
            ),
        },
        "/users/{name}": {
            "parameters": [_path_param("name")],
            "get": _op("One user", {"200": _json(_ref("User"))} | _errors(*STD, 404)),
            "patch": _op(
                "Change a user (never demote the last administrator or yourself)",
                {"200": _json(_ref("User"))} | _errors(400, *STD, 404, 413),
                requestBody=_body(_ref("UserChanges")),
            ),
            "delete": _op(
                "Delete a user and their mail (never yourself, never the last admin)",
                NO_CONTENT | _errors(400, *STD, 404),
            ),
        },
        "/domains": {
            "get": _op(
                "Local domains",
                {"200": _json({"type": "array", "items": _ref("Domain")})} | _errors(*STD),
            ),
            "post": _op(
                "Add a local domain",
                {"201": _json(_ref("Domain"), "Created")} | _errors(400, *STD, 413),
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "default": {"type": "boolean"}},
                    }
                ),
            ),
        },
        "/domains/{name}": {
            "parameters": [_path_param("name")],
            "delete": _op("Remove a local domain", NO_CONTENT | _errors(400, *STD)),
        },
        "/settings/local-mail": {
            "get": _op("Local Mail settings", {"200": _json(_ref("LocalMail"))} | _errors(*STD)),
            "put": _op(
                "Change Local Mail settings",
                {"200": _json(_ref("LocalMail"))} | _errors(400, *STD, 413),
                requestBody=_body(_ref("LocalMail")),
            ),
        },
        "/mappings": {
            "get": _op(
                "Mappings in order",
                {"200": _json({"type": "array", "items": _ref("Mapping")})} | _errors(*STD),
            ),
            "post": _op(
                "Add a mapping",
                {"201": _json(_ref("Mapping"), "Created")} | _errors(400, *STD, 413),
                requestBody=_body(_ref("NewMapping")),
            ),
        },
        "/mappings/{id}": {
            "parameters": [_path_param("id", "integer")],
            "delete": _op("Delete a mapping", NO_CONTENT | _errors(*STD, 404)),
        },
        "/groups": {
            "get": _op(
                "Groups with member counts",
                {"200": _json({"type": "array", "items": _ref("Group")})} | _errors(*STD),
            ),
            "post": _op(
                "Add a group",
                {"201": _json(_ref("Group"), "Created")} | _errors(400, *STD, 413),
                requestBody=_body(
                    {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}},
                    }
                ),
            ),
        },
        "/groups/{id}": {
            "parameters": [_path_param("id", "integer")],
            "patch": _op(
                "Change cells of a group (null = do not override)",
                {"200": _json(_ref("Group"))} | _errors(400, *STD, 404, 413),
                requestBody=_body(_ref("GroupChanges")),
            ),
            "delete": _op("Delete a group", NO_CONTENT | _errors(*STD, 404)),
        },
        "/queue": {
            "get": _op(
                "The outgoing queue",
                {"200": _json({"type": "array", "items": _ref("QueueEntry")})} | _errors(*STD),
            )
        },
        "/queue/{id}": {
            "parameters": [_path_param("id", "integer")],
            "delete": _op("Remove a queued message", NO_CONTENT | _errors(*STD, 404)),
        },
        "/queue/{id}/bounce": {
            "parameters": [_path_param("id", "integer")],
            "post": _op(
                "Fail the open recipients and send the sender a failure report",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["bounced"],
                            "properties": {"bounced": {"type": "integer"}},
                        }
                    )
                }
                | _errors(*STD, 404),
            ),
        },
        "/access/{table}": {
            "parameters": [
                {
                    "name": "table",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["smtp", "pop3", "imap", "global"]},
                }
            ],
            "get": _op(
                "An IP access table (rules sorted most specific first)",
                {"200": _json(_ref("AccessTable"))} | _errors(*STD, 404),
            ),
            "put": _op(
                "Replace an IP access table",
                {"200": _json(_ref("AccessTable"))} | _errors(400, *STD, 404, 413),
                requestBody=_body(_ref("AccessChanges")),
            ),
        },
        "/import/users": {
            "post": _op(
                "Import users from CSV text: every row or none",
                {
                    "200": _json(_ref("ImportResult")),
                    "400": _json(
                        {
                            "type": "object",
                            "required": ["error"],
                            "properties": {
                                "error": {"type": "string"},
                                "problems": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "Refused; problems name each line",
                    ),
                }
                | _errors(*STD, 413),
                requestBody=_body(_ref("UserImport")),
            ),
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "vpop3d admin API",
            "version": __version__,
            "description": "Administration of vpop3d. Log in with HTTP Basic (an "
            "administrator's web login) or a session cookie plus X-CSRF-Token.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"basic": []}, {"session": []}],
        "components": {
            "schemas": SCHEMAS | collectors.OPENAPI_SCHEMAS | sharing.OPENAPI_SCHEMAS,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "vpop3d_session"},
            },
        },
        "paths": _paths()
        | collectors.openapi_paths(_op, _json, _errors, _path_param)
        | sharing.openapi_paths(_op, _json, _errors, _path_param),
    }
