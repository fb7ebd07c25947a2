import Foundation

/// The API's description (OpenAPI 3.1), served at /api/v1/openapi.json, with this pipeline's environment and service
/// names filled in. Every path here is a page's JSON twin or an action; `ServerTests` checks the document parses and
/// describes every route, and runs schemathesis against the server with it.
enum OpenAPI {
    static func document(environments: [String], services: [String]) -> String {
        // A name schema: one of `names` (a pipeline without services takes none: any string then finds nothing).
        func list(_ names: [String]) -> String {
            guard !names.isEmpty else { return #"{"type": "string", "minLength": 1}"# }
            let json = String(decoding: (try? JSONEncoder().encode(names)) ?? Data("[]".utf8), as: UTF8.self)  // strings always encode
            return #"{"type": "string", "enum": "# + json + "}"
        }
        return template.replacingOccurrences(of: "__ENVIRONMENTS__", with: list(environments))
            .replacingOccurrences(of: "__SERVICES__", with: list(services))
    }

    private static let template = #"""
    {
      "openapi": "3.1.0",
      "info": {"title": "pipeline serve", "version": "1", "description": "Runs, approvals, deployments and the audit of one pipeline. Authenticate with `Authorization: Bearer TOKEN` (`pipeline tokens create`); a browser session works too, with its CSRF token in `X-CSRF-Token` on POSTs."},
      "servers": [{"url": "/api/v1"}],
      "security": [{"bearer": []}, {"session": []}],
      "components": {
        "securitySchemes": {
          "bearer": {"type": "http", "scheme": "bearer"},
          "session": {"type": "apiKey", "in": "cookie", "name": "pipeline_session"}
        },
        "parameters": {
          "run": {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
          "stage": {"name": "stage", "in": "path", "required": true, "schema": {"type": "string"}}
        },
        "responses": {
          "problem": {"description": "What was wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        },
        "schemas": {
          "EnvironmentName": __ENVIRONMENTS__,
          "ServiceName": __SERVICES__,
          "Event": {"type": "object", "description": "One server-sent event: `message` events carry a log line, or the run as JSON; the `end` event's data is the final status", "required": ["data", "event"], "properties": {
            "event": {"type": "string", "enum": ["message", "end"]}, "data": {"type": "string"}, "id": {"type": "string"}}},
          "Problem": {"type": "object", "required": ["error", "status"], "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
          "RunStatus": {"type": "string", "enum": ["queued", "running", "waiting", "approved", "succeeded", "failed", "rolled-back", "cancelled", "interrupted", "superseded"]},
          "StageStatus": {"type": "string", "enum": ["pending", "running", "waiting", "succeeded", "failed", "timedOut", "skipped", "conditionFalse", "cancelled", "interrupted"]},
          "Commit": {"type": "object", "required": ["author", "time", "subject"], "properties": {"author": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "subject": {"type": "string"}}},
          "Stage": {"type": "object", "required": ["id", "needs", "status", "attempts", "artifacts"], "properties": {
            "id": {"type": "string"}, "kind": {"type": "string"}, "service": {"type": "string"}, "needs": {"type": "array", "items": {"type": "string"}},
            "status": {"$ref": "#/components/schemas/StageStatus"}, "attempts": {"type": "integer"},
            "startedAt": {"type": "string", "format": "date-time"}, "finishedAt": {"type": "string", "format": "date-time"},
            "exitCode": {"type": "integer"}, "message": {"type": "string"}, "artifacts": {"type": "array", "items": {"type": "string"}}}},
          "Run": {"type": "object", "required": ["id", "environment", "status", "trigger", "user", "createdAt", "stages"], "properties": {
            "id": {"type": "integer"}, "environment": {"type": "string"}, "status": {"$ref": "#/components/schemas/RunStatus"},
            "sha": {"type": "string"}, "ref": {"type": "string"}, "trigger": {"type": "string"}, "user": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"}, "startedAt": {"type": "string", "format": "date-time"},
            "finishedAt": {"type": "string", "format": "date-time"}, "message": {"type": "string"},
            "commit": {"$ref": "#/components/schemas/Commit"}, "stages": {"type": "array", "items": {"$ref": "#/components/schemas/Stage"}},
            "changes": {"type": "array", "items": {"$ref": "#/components/schemas/ServiceChange"}}}},
          "ServiceChange": {"type": "object", "required": ["service", "liveFrom", "newSha", "commits", "taskDefinitionDiff", "dns", "unchanged", "notes"], "properties": {
            "service": {"type": "string"}, "liveSha": {"type": "string"}, "liveFrom": {"type": "string", "enum": ["record", "ecs", "none"]},
            "newSha": {"type": "string"}, "liveDigest": {"type": "string"}, "newDigest": {"type": "string"}, "liveTaskDefinition": {"type": "string"},
            "commits": {"type": "array", "items": {"type": "object", "required": ["sha", "author", "time", "subject"], "properties": {
              "sha": {"type": "string"}, "author": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "subject": {"type": "string"}}}},
            "taskDefinitionDiff": {"type": "array", "items": {"type": "string"}}, "dns": {"type": "array", "items": {"type": "string"}},
            "unchanged": {"type": "boolean"}, "notes": {"type": "array", "items": {"type": "string"}},
            "incomplete": {"type": "boolean", "description": "something the comparison needs could not be asked; the notes say what"}}},
          "Live": {"type": "object", "required": ["environment", "service", "kind", "sha", "at"], "properties": {
            "environment": {"type": "string"}, "service": {"type": "string"}, "kind": {"type": "string"}, "sha": {"type": "string"},
            "subject": {"type": "string"}, "image": {"type": "string"}, "digest": {"type": "string"}, "taskDefinitionArn": {"type": "string"},
            "at": {"type": "string", "format": "date-time"}, "run": {"type": "integer"}, "trigger": {"type": "string"},
            "approvedBy": {"type": "string"}, "startedBy": {"type": "string"}}},
          "Environment": {"type": "object", "required": ["name", "branch", "gated", "live", "active"], "properties": {
            "name": {"type": "string"}, "branch": {"type": "string"}, "gated": {"type": "boolean"},
            "live": {"type": "array", "items": {"$ref": "#/components/schemas/Live"}}, "active": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}}},
          "Approval": {"type": "object", "required": ["run", "environment", "stage", "required", "approvers", "approvedBy", "selfApproval", "services"], "properties": {
            "run": {"type": "integer"}, "environment": {"type": "string"}, "stage": {"type": "string"}, "message": {"type": "string"},
            "required": {"type": "integer"}, "approvers": {"type": "array", "items": {"type": "string"}}, "approvedBy": {"type": "array", "items": {"type": "string"}},
            "startedBy": {"type": "string"}, "selfApproval": {"type": "boolean"}, "expiresAt": {"type": "string", "format": "date-time"},
            "services": {"type": "array", "items": {"type": "object", "required": ["service"], "properties": {
              "service": {"type": "string"}, "liveSha": {"type": "string"}, "liveDigest": {"type": "string"}, "newSha": {"type": "string"}, "newDigest": {"type": "string"},
              "commits": {"type": "array", "items": {"type": "object", "required": ["sha", "author", "time", "subject"], "properties": {
                "sha": {"type": "string"}, "author": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "subject": {"type": "string"}}}}}}}}},
          "Decided": {"type": "object", "required": ["run", "outcome"], "properties": {"run": {"type": "integer"}, "outcome": {"type": "string"}}},
          "Stats": {"type": "object", "required": ["since", "until", "services", "weeks", "leadTimes"], "properties": {
            "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
            "leadTimes": {"type": "array", "items": {"type": "number"}},
            "weeks": {"type": "array", "items": {"type": "object", "required": ["environment", "week", "deployments"], "properties": {
              "environment": {"type": "string"}, "week": {"type": "string"}, "deployments": {"type": "integer"}}}},
            "services": {"type": "array", "items": {"type": "object", "required": ["environment", "service", "deployments", "deploymentsPerDay", "changes", "failedChanges", "automaticRollbacks", "manualRollbacks"], "properties": {
              "environment": {"type": "string"}, "service": {"type": "string"}, "deployments": {"type": "integer"}, "deploymentsPerDay": {"type": "number"},
              "leadTimeMedian": {"type": "number"}, "leadTime90": {"type": "number"}, "changes": {"type": "integer"}, "failedChanges": {"type": "integer"},
              "automaticRollbacks": {"type": "integer"}, "manualRollbacks": {"type": "integer"}, "changeFailureRate": {"type": "number"},
              "timeToRestoreMedian": {"type": "number"}}}}}},
          "AuditEntry": {"type": "object", "required": ["id", "at", "actor", "identity", "action"], "properties": {
            "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"},
            "identity": {"type": "string", "enum": ["server-user", "token", "proxy", "local"]}, "action": {"type": "string"},
            "target": {"type": "string"}, "detail": {"type": "string"}, "address": {"type": "string"}}}
        }
      },
      "paths": {
        "/environments": {"get": {"summary": "What is live in each environment, and what runs there now", "responses": {
          "200": {"description": "Environments", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Environment"}}}}},
          "401": {"$ref": "#/components/responses/problem"}}}},
        "/runs": {
          "get": {"summary": "Runs, newest first", "parameters": [
              {"name": "environment", "in": "query", "schema": {"$ref": "#/components/schemas/EnvironmentName"}}, {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/RunStatus"}},
              {"name": "sha", "in": "query", "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{1,40}$"}}, {"name": "trigger", "in": "query", "schema": {"type": "string", "minLength": 1}},
              {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": {"description": "Runs", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}}}},
              "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}}},
          "post": {"summary": "Start a run (deployer)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["environment"], "properties": {
              "environment": {"$ref": "#/components/schemas/EnvironmentName"}, "sha": {"type": "string", "pattern": "^[0-9a-fA-F]{7,40}$"}}}}}},
            "responses": {"201": {"description": "The run, recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
              "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"},
              "409": {"$ref": "#/components/responses/problem"}, "413": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}": {"get": {"summary": "A run and every stage of its plan", "parameters": [{"$ref": "#/components/parameters/run"}], "responses": {
          "200": {"description": "The run", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
          "401": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/events": {"get": {"summary": "The run as JSON each time it changes (server-sent events), then an `end` event", "parameters": [{"$ref": "#/components/parameters/run"}], "responses": {
          "200": {"description": "Events", "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/Event"}}}}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/stages/{stage}/log": {"get": {"summary": "A stage's masked log, one event per line (its id is the byte offset after the line: a client that sends it back as the Last-Event-ID header resumes after it), then an `end` event", "parameters": [
            {"$ref": "#/components/parameters/run"}, {"$ref": "#/components/parameters/stage"}], "responses": {
          "200": {"description": "Events", "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/Event"}}}}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/cancel": {"post": {"summary": "Cancel a running or queued run, as Ctrl-C would (deployer)", "parameters": [{"$ref": "#/components/parameters/run"}], "responses": {
          "202": {"description": "Signalled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
          "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}, "409": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/resume": {"post": {"summary": "Continue an interrupted or approved run (deployer)", "parameters": [{"$ref": "#/components/parameters/run"}], "responses": {
          "202": {"description": "Continuing", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
          "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}, "409": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/approval": {"get": {"summary": "What a waiting run's gate lets through, and who has approved", "parameters": [{"$ref": "#/components/parameters/run"}], "responses": {
          "200": {"description": "The gate", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approval"}}}},
          "401": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/approve": {"post": {"summary": "Approve as the signed-in gate approver", "parameters": [{"$ref": "#/components/parameters/run"}],
          "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}}}, "responses": {
          "200": {"description": "Counted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decided"}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"},
          "404": {"$ref": "#/components/responses/problem"}, "409": {"$ref": "#/components/responses/problem"}}}},
        "/runs/{id}/reject": {"post": {"summary": "Reject as the signed-in gate approver", "parameters": [{"$ref": "#/components/parameters/run"}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1}}}}}}, "responses": {
          "200": {"description": "Rejected", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decided"}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"},
          "404": {"$ref": "#/components/responses/problem"}, "409": {"$ref": "#/components/responses/problem"}}}},
        "/services/{name}": {"get": {"summary": "A service's deployment records, newest first", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/ServiceName"}}], "responses": {
          "200": {"description": "Records", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Live"}}}}},
          "401": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/services/{name}/rollback": {"get": {"summary": "What rolling the service back would change (the CLI's rollback --dry-run, with its checks); changes nothing", "parameters": [
            {"name": "name", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/ServiceName"}},
            {"name": "env", "in": "query", "required": true, "schema": {"$ref": "#/components/schemas/EnvironmentName"}},
            {"name": "to", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-fA-F]{7,40}|previous)$"}}], "responses": {
          "200": {"description": "The preview", "content": {"application/json": {"schema": {"type": "object", "required": ["service", "environment", "to", "possible", "text"], "properties": {
            "service": {"type": "string"}, "environment": {"type": "string"}, "to": {"type": "string"}, "possible": {"type": "boolean"}, "text": {"type": "string"}}}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"},
          "404": {"$ref": "#/components/responses/problem"}}},
          "post": {"summary": "Roll a service back (deployer; in a gated environment a gate approver or an admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/ServiceName"}}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["env", "to"], "properties": {"env": {"$ref": "#/components/schemas/EnvironmentName"}, "to": {"type": "string", "pattern": "^([0-9a-fA-F]{7,40}|previous)$", "description": "a commit SHA (7 to 40 hex digits) or previous"}}}}}}, "responses": {
          "201": {"description": "The rollback run, recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "403": {"$ref": "#/components/responses/problem"},
          "404": {"$ref": "#/components/responses/problem"}, "409": {"$ref": "#/components/responses/problem"}}}},
        "/whoami": {"get": {"summary": "Who the credentials are", "responses": {
          "200": {"description": "The caller", "content": {"application/json": {"schema": {"type": "object", "required": ["user", "role", "identity"], "properties": {
            "user": {"type": "string"}, "role": {"type": "string", "enum": ["viewer", "deployer", "admin"]}, "identity": {"type": "string"}}}}}},
          "401": {"$ref": "#/components/responses/problem"}}}},
        "/tokens": {"post": {"summary": "Make an API token for the user whose password the body carries (`pipeline login`); shown once", "security": [],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["user", "password"], "properties": {
            "user": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string"}}}}}}, "responses": {
          "201": {"description": "The token", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "user", "token"], "properties": {
            "id": {"type": "integer"}, "user": {"type": "string"}, "token": {"type": "string"}}}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "429": {"$ref": "#/components/responses/problem"}}}},
        "/stats": {"get": {"summary": "The four DORA keys per environment and service (as `pipeline stats --json`)", "parameters": [
            {"name": "env", "in": "query", "schema": __ENVIRONMENTS__}, {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 3650}}], "responses": {
          "200": {"description": "The figures", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stats"}}}},
          "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}, "404": {"$ref": "#/components/responses/problem"}}}},
        "/audit": {"get": {"summary": "The audit, oldest first; `format=jsonl` exports JSON lines", "parameters": [
            {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
            {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "jsonl"]}}], "responses": {
          "200": {"description": "Entries", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}},
            "application/x-ndjson": {"schema": {"type": "string"}}}}, "400": {"$ref": "#/components/responses/problem"}, "401": {"$ref": "#/components/responses/problem"}}}}
      }
    }
    """#
}
