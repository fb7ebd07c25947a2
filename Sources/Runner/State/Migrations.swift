import Foundation

/// The schema, one migration per version; `PRAGMA user_version` says which have run.
enum Migrations {
    static let steps: [String] = [
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            environment TEXT NOT NULL,
            status TEXT NOT NULL,
            sha TEXT, ref TEXT,
            trigger TEXT NOT NULL, user TEXT NOT NULL,
            pid INTEGER, heartbeat_at REAL, marker TEXT NOT NULL,
            created_at REAL NOT NULL, started_at REAL, finished_at REAL,
            message TEXT
        );
        CREATE INDEX runs_by_environment ON runs (environment, id);
        CREATE TABLE stage_runs (
            run_id INTEGER NOT NULL REFERENCES runs (id),
            stage_id TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            started_at REAL, finished_at REAL, exit_code INTEGER, message TEXT,
            PRIMARY KEY (run_id, stage_id)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            at REAL NOT NULL, stage_id TEXT, kind TEXT NOT NULL, message TEXT NOT NULL
        );
        CREATE INDEX events_by_run ON events (run_id, id);
        CREATE TABLE locks (
            environment TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            pid INTEGER NOT NULL,
            heartbeat_at REAL NOT NULL
        );
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER REFERENCES runs (id),
            environment TEXT NOT NULL, service TEXT NOT NULL, kind TEXT NOT NULL,
            sha TEXT NOT NULL, image_digest TEXT, task_definition_arn TEXT, task_definition_json TEXT,
            trigger TEXT, approved_by TEXT, created_at REAL NOT NULL
        );
        CREATE TABLE approvals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            stage_id TEXT NOT NULL, user TEXT NOT NULL, decision TEXT NOT NULL, comment TEXT, at REAL NOT NULL
        );
        """,
        """
        ALTER TABLE runs ADD COLUMN source TEXT;
        ALTER TABLE runs ADD COLUMN commit_author TEXT;
        ALTER TABLE runs ADD COLUMN commit_time REAL;
        ALTER TABLE runs ADD COLUMN commit_subject TEXT;
        """,
        """
        ALTER TABLE deployments ADD COLUMN image TEXT;
        ALTER TABLE deployments ADD COLUMN run_number INTEGER;
        ALTER TABLE deployments ADD COLUMN previous_task_definition_arn TEXT;
        CREATE INDEX deployments_by_service ON deployments (environment, service, id);
        """,
        // Run ownership: the owner's host and start time beside its pid, a lease, and a fencing token.
        """
        ALTER TABLE runs ADD COLUMN owner_host TEXT;
        ALTER TABLE runs ADD COLUMN owner_started TEXT;
        ALTER TABLE runs ADD COLUMN lease_expires_at REAL;
        ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
        """,
        // The team layer: server users, API tokens (hashed), sign-in sessions (hashed), and the append-only audit.
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT, created_at REAL NOT NULL
        );
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL REFERENCES users (name), name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL
        );
        CREATE TABLE sessions (
            hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users (name), csrf TEXT NOT NULL,
            created_at REAL NOT NULL, expires_at REAL NOT NULL
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, identity TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT, detail TEXT, address TEXT
        );
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
        """,
        // Removed users keep their record (their name stays taken and their actions stay attributed).
        """
        ALTER TABLE users ADD COLUMN disabled_at REAL;
        """,
        // Webhook deliveries seen (a redelivery starts nothing new), and what the forge was last told of each run.
        """
        CREATE TABLE webhook_deliveries (
            forge TEXT NOT NULL, delivery TEXT NOT NULL, event TEXT NOT NULL, received_at REAL NOT NULL, outcome TEXT NOT NULL,
            PRIMARY KEY (forge, delivery)
        );
        CREATE TABLE forge_reports (
            run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE, status_state TEXT, status_description TEXT,
            deployment_id INTEGER, deployment_state TEXT, updated_at REAL NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT, next_try_at REAL
        );
        CREATE TABLE run_endings (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, environment TEXT NOT NULL, trigger TEXT NOT NULL,
            status TEXT NOT NULL, started_at REAL, finished_at REAL
        );
        INSERT INTO run_endings (run_id, environment, trigger, status, started_at, finished_at)
            SELECT id, environment, trigger, status, started_at, finished_at FROM runs
            WHERE status IN ('succeeded', 'failed', 'rolled-back', 'cancelled', 'superseded') ORDER BY finished_at, id;
        CREATE TABLE run_starts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, environment TEXT NOT NULL, trigger TEXT NOT NULL, at REAL NOT NULL
        );
        INSERT INTO run_starts (run_id, environment, trigger, at) SELECT id, environment, trigger, created_at FROM runs ORDER BY id;
        CREATE TABLE stage_endings (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, environment TEXT NOT NULL, stage_id TEXT NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL, started_at REAL, finished_at REAL
        );
        INSERT INTO stage_endings (run_id, environment, stage_id, status, attempts, started_at, finished_at)
            SELECT s.run_id, r.environment, s.stage_id, s.status, s.attempts, s.started_at, s.finished_at
            FROM stage_runs s JOIN runs r ON r.id = s.run_id
            WHERE s.started_at IS NOT NULL AND s.status IN ('succeeded', 'failed', 'cancelled', 'timedOut', 'interrupted') ORDER BY s.finished_at;
        CREATE TABLE aws_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, stage_id TEXT NOT NULL, service TEXT NOT NULL,
            operation TEXT NOT NULL, outcome TEXT NOT NULL, seconds REAL NOT NULL, at REAL NOT NULL
        );
        """,
        // What a deployed image is built from (its build key): an environment that deploys only what another
        // verified finds the verified image of a commit by it.
        """
        ALTER TABLE deployments ADD COLUMN build_key TEXT;
        CREATE INDEX deployments_by_build_key ON deployments (environment, service, build_key);
        """,
    ]

    static func apply(to database: Database) throws {
        try database.transaction {
            let current = try database.query("PRAGMA user_version").first?["user_version"].int ?? 0
            guard current < steps.count else {
                if current > steps.count {
                    throw DatabaseError(
                        code: -1,
                        description: "the state database has schema version \(current), newer than this pipeline knows (\(steps.count)); update pipeline")
                }
                return
            }
            for (index, step) in steps.enumerated().dropFirst(current) {
                // Statements end with ";" at the end of a line (a trigger's body keeps its own ";" inside one line).
                for statement in step.components(separatedBy: ";\n") where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    try database.execute(String(statement))
                }
                try database.execute("PRAGMA user_version = \(index + 1)")
            }
        }
    }
}
