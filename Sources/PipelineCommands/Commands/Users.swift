import ArgumentParser
import Foundation
import Runner

extension PipelineCommand {
    /// `pipeline users add|list|set-role|set-password`: the server's local accounts.
    struct UsersGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "users", abstract: "Manage the server's user accounts (roles: viewer, deployer, admin).",
            subcommands: [AddUser.self, ListUsers.self, SetRole.self, SetPassword.self, RemoveUser.self])
    }

    struct AddUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a user. The password is read from stdin with --password-stdin, else asked for at the terminal.",
            discussion: "Exit codes: 0 added; 2 a bad name, role or password, or the user exists (nothing changed).")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user's name (what approval gates' approvers: lists name).") var name: String
        @Option(help: "viewer, deployer or admin.") var role: Role
        @Flag(help: "Read the password from the first line of stdin.") var passwordStdin = false

        func run() async throws {
            try await Accounts.reporting {
                try StateStore.checkUserName(name)
                let password = try Passwords.read(fromStdin: passwordStdin)
                let store = try StateAccess.open(try global.workspace())
                let user = try store.addUser(name, role: role, password: password)
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "user.added", target: "user \(user.name)", detail: user.role.rawValue)
                print("added \(user.name) (\(user.role.rawValue))")
            }
        }
    }

    struct ListUsers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the users and their roles.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print them as JSON.") var json = false

        func run() async throws {
            do {
                let users = try StateAccess.open(try global.workspace()).users()
                if json { return print(try JSONOutput.string(users)) }
                if users.isEmpty { return print("no users yet; add one with `pipeline users add NAME --role admin`") }
                var table = TextTable(headers: ["USER", "ROLE", "ADDED"])
                for user in users { table.add([user.name, user.role.rawValue, Dates.format(user.createdAt)]) }
                print(table.render(), terminator: "")
            } catch {
                throw error.reported()
            }
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-role", abstract: "Change a user's role.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user.") var name: String
        @Option(help: "viewer, deployer or admin.") var role: Role

        func run() async throws {
            try await Accounts.reporting {
                let store = try StateAccess.open(try global.workspace())
                try store.setRole(name, role: role)
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "user.role-set", target: "user \(name)", detail: role.rawValue)
                print("\(name) is a \(role.rawValue) now")
            }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-password", abstract: "Set a user's password (their sessions end).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user.") var name: String
        @Flag(help: "Read the password from the first line of stdin.") var passwordStdin = false

        func run() async throws {
            try await Accounts.reporting {
                let password = try Passwords.read(fromStdin: passwordStdin)
                let store = try StateAccess.open(try global.workspace())
                try store.setPassword(name, password: password)
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "user.password-set", target: "user \(name)")
                print("password of \(name) set; their sessions ended (their API tokens stay: `pipeline tokens list --user \(name)`, `tokens revoke ID`)")
            }
        }
    }

    struct RemoveUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove a user: their sessions end, their tokens are revoked, they can sign in no more (the record stays).",
            discussion: "Exit codes: 0 removed; 2 no such user.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The user.") var name: String

        func run() async throws {
            try await Accounts.reporting {
                let store = try StateAccess.open(try global.workspace())
                try store.removeUser(name)
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "user.removed", target: "user \(name)")
                print("\(name) removed: sessions ended, tokens revoked")
            }
        }
    }

    /// `pipeline tokens create|list|revoke`: API tokens for the CLI and scripts.
    struct TokensGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tokens", abstract: "Manage API tokens (kept hashed; a new token is shown once).",
            subcommands: [CreateToken.self, ListTokens.self, RevokeToken.self])
    }

    struct CreateToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Make an API token for a user and print it (the only time it is shown).",
            discussion: "Exit codes: 0 made; 2 no such user.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The user the token acts as.") var user: String
        @Option(help: "What the token is for.") var name = "cli"

        func run() async throws {
            try await Accounts.reporting {
                let store = try StateAccess.open(try global.workspace())
                let (record, secret) = try store.createToken(user: user, name: name)
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "token.created", target: "user \(user)", detail: "token \(record.id) (\(name))")
                print(secret)
                FileHandle.standardError.write(Data("token \(record.id) for \(user) made; it is shown only now (send it as `Authorization: Bearer TOKEN`)\n".utf8))
            }
        }
    }

    struct ListTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (never their secrets).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this user's.") var user: String?
        @Flag(help: "Print them as JSON.") var json = false

        func run() async throws {
            do {
                let tokens = try StateAccess.open(try global.workspace()).tokens(user: user)
                if json { return print(try JSONOutput.string(tokens)) }
                var table = TextTable(headers: ["ID", "USER", "NAME", "MADE", "LAST USED", "REVOKED"])
                for token in tokens {
                    table.add([
                        String(token.id), token.user, token.name, Dates.format(token.createdAt), token.lastUsedAt.map(Dates.format) ?? "-",
                        token.revokedAt.map(Dates.format) ?? "-",
                    ])
                }
                print(table.render(), terminator: "")
            } catch {
                throw error.reported()
            }
        }
    }

    struct RevokeToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by its id. Exit codes: 0 revoked; 2 no such live token.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The token's id (`pipeline tokens list`).") var id: Int

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                guard try store.revokeToken(id) else {
                    FileHandle.standardError.write(Data("error: there is no live token \(id); `pipeline tokens list` shows them\n".utf8))
                    throw Exit.badInput
                }
                try store.audit(actor: StateAccess.currentUser, identity: .local, action: "token.revoked", detail: "token \(id)")
                print("token \(id) revoked")
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw error.reported()
            }
        }
    }
}

extension Role: ExpressibleByArgument {}

/// Reading a new password without echoing it or putting it on a command line.
enum Passwords {
    static func read(fromStdin: Bool, confirm: Bool = true) throws -> String {
        if fromStdin {
            guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else {
                throw AccountError("--password-stdin: stdin held no password (one line is read)")
            }
            return line
        }
        guard isatty(0) == 1, let first = getpass("password: ").map({ String(cString: $0) }) else {
            throw AccountError("no terminal to ask the password at: pass it on stdin with --password-stdin")
        }
        guard confirm else { return first }
        guard let second = getpass("again: ").map({ String(cString: $0) }), second == first else {
            throw AccountError("the two passwords differ; nothing changed")
        }
        return first
    }
}

/// Runs an account command's body: a refused name, role or password is exit 2 with its message; anything else is
/// reported as every command reports it.
enum Accounts {
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as AccountError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw Exit.badInput
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw error.reported()
        }
    }
}
