import ArgumentParser
import Foundation
import Runner

extension PipelineCommand {
    /// `pipeline login URL --user NAME`: keeps an API token for `pipeline serve`, so that `approve`, `reject`,
    /// `rollback` and `run` with `--server` act as a verified user.
    struct Login: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "login",
            abstract: "Log in to a pipeline server: keep an API token (file mode 0600) for commands run with --server.",
            discussion: """
                With --user, the password is asked for (or read with --password-stdin) and the server makes a token; \
                with --token-stdin, a token from `pipeline tokens create` is checked and kept. The login is kept in \
                $PIPELINE_LOGIN_FILE, else ~/.config/pipeline/login.json. Exit codes: 0 logged in; 2 refused (wrong \
                password, bad token); 74 the server could not be reached or the login not kept.
                """)

        @Argument(help: "The server's URL (as `pipeline serve` printed it, or its public URL).") var url: String
        @Option(help: "Your user name on the server.") var user: String?
        @Flag(help: "Read the password from the first line of stdin.") var passwordStdin = false
        @Flag(help: "Read an API token from the first line of stdin instead of signing in.") var tokenStdin = false

        func validate() throws {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ValidationError("'\(url)' is not an http(s) URL")
            }
            if (user == nil) == !tokenStdin { throw ValidationError("give --user NAME (to sign in) or --token-stdin (to keep a token)") }
        }

        func run() async throws {
            do {
                let base = url.hasSuffix("/") ? String(url.dropLast()) : url
                let token: String
                if tokenStdin {
                    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                        throw ServerCallError(status: 400, message: "--token-stdin: stdin held no token")
                    }
                    token = line.trimmingCharacters(in: .whitespaces)
                } else {
                    let password = try Passwords.read(fromStdin: passwordStdin, confirm: false)
                    let made = try await ServerClient(url: base, token: nil).call(
                        "POST", "/tokens", ["user": user!, "password": password, "name": "pipeline login on \(ProcessInfo.processInfo.hostName)"])
                    guard let text = (made as? [String: Any])?["token"] as? String else {
                        throw ServerCallError(status: nil, message: "the server's answer carries no token")
                    }
                    token = text
                }
                let who = try await ServerClient(url: base, token: token).call("GET", "/whoami") as? [String: Any]
                guard let name = who?["user"] as? String else { throw ServerCallError(status: nil, message: "the server did not say who the token is") }
                do {
                    try ServerLogin(url: base, user: name, token: token).save()
                } catch {
                    throw ServerCallError(status: nil, message: "could not keep the login in \(ServerLogin.file.path): \(error)")
                }
                print("logged in to \(base) as \(name) (\(who?["role"] as? String ?? "?")); kept in \(ServerLogin.file.path)")
            } catch let error as ServerCallError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw error.exitCode
            } catch let error as AccountError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.badInput
            }
        }
    }
}
