import CSQLite
import Foundation

/// A value stored in or read from SQLite.
public enum SQLValue: Sendable, Equatable {
    /// NULL.
    case null
    /// An INTEGER.
    case integer(Int64)
    /// A REAL.
    case real(Double)
    /// TEXT.
    case text(String)

    /// The value as a string, if it is one.
    public var string: String? {
        if case .text(let text) = self { return text }
        return nil
    }

    /// The value as an integer, if it is one.
    public var int: Int? {
        if case .integer(let value) = self { return Int(value) }
        return nil
    }

    /// The value as a number, if it is one.
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
}

/// One row of a query, by column name.
public struct Row: Sendable {
    let values: [String: SQLValue]

    /// The column's value (NULL when there is no such column).
    public subscript(_ column: String) -> SQLValue { values[column] ?? .null }
}

/// An error from SQLite, naming what was being done and SQLite's own message.
public struct DatabaseError: Error, CustomStringConvertible {
    /// SQLite's result code.
    public let code: Int32
    /// What failed and why.
    public let description: String

    /// Not SQLite's: a value in the database that this pipeline does not know (written by a newer one).
    public static let unknownValue: Int32 = -2

    /// SQLite's primary result codes for a database that cannot be written: full, read-only, I/O error, cannot
    /// open, locked past the busy timeout.
    public static let cannotWrite: Set<Int32> = [SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_BUSY]
}

/// One SQLite connection; calls are serialised, so it can be shared between threads. Unchecked: the connection is a
/// C handle and transactions nest on one thread, so a recursive lock guards both (Mutex is not re-entrant).
public final class Database: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lock = NSRecursiveLock()
    private var depth = 0
    /// The database file.
    public let path: String

    /// Opens (and creates) the database at `path`, in WAL mode, waiting up to `busyTimeout` for other writers.
    public init(path: String, busyTimeout: Int32 = 10_000) throws(DatabaseError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw DatabaseError(code: code, description: "sqlite3_open_v2(\(path)) failed: \(message)")
        }
        self.handle = handle
        self.path = path
        sqlite3_busy_timeout(handle, busyTimeout)
        try execute("PRAGMA journal_mode = WAL")
        try execute("PRAGMA synchronous = NORMAL")
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one statement that returns no rows.
    public func execute(_ sql: String, _ parameters: [SQLValue] = []) throws(DatabaseError) {
        _ = try query(sql, parameters)
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws(DatabaseError) -> [Row] {
        lock.lock()
        defer { lock.unlock() }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw failure("preparing \(sql.prefix(60))")
        }
        defer { sqlite3_finalize(statement) }
        for (index, value) in parameters.enumerated() {
            let position = Int32(index + 1)
            let code: Int32 = switch value {
            case .null: sqlite3_bind_null(statement, position)
            case .integer(let number): sqlite3_bind_int64(statement, position, number)
            case .real(let number): sqlite3_bind_double(statement, position, number)
            case .text(let text): sqlite3_bind_text(statement, position, text, -1, pipeline_sqlite_transient())
            }
            guard code == SQLITE_OK else { throw failure("binding parameter \(position)") }
        }
        var rows: [Row] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else { throw failure("running \(sql.prefix(60))") }
            var values: [String: SQLValue] = [:]
            for column in 0..<sqlite3_column_count(statement) {
                let name = String(cString: sqlite3_column_name(statement, column))
                values[name] = switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
                case SQLITE_TEXT: .text(String(cString: sqlite3_column_text(statement, column)))
                default: .null
                }
            }
            rows.append(Row(values: values))
        }
        return rows
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`), committed when it returns and rolled back when
    /// it throws.
    /// A transaction inside another one joins it.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if depth > 0 {
            depth += 1
            defer { depth -= 1 }
            return try body()
        }
        try execute("BEGIN IMMEDIATE")
        depth = 1
        defer { depth = 0 }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")  // SQLite rolls back a failed transaction itself too; the first error is the one to tell
            throw error
        }
    }

    private func failure(_ doing: String) -> DatabaseError {
        let code = sqlite3_errcode(handle)
        return DatabaseError(code: code, description: "SQLite error while \(doing): \(String(cString: sqlite3_errmsg(handle)))")
    }
}
