import AWS
import Foundation
import HTTP
import Testing
import TestSupport

/// The credential chain: which source is chosen, and each source fetching real credentials (against moto with
/// signatures checked, or the stand-in for the endpoints that exist only inside AWS).
@Suite struct CredentialChainTests {
    /// An environment with no credentials of its own: moto's endpoints and region, empty shared files.
    func bare(_ folder: TemporaryDirectory, credentials: String = "", config: String = "") -> [String: String] {
        var environment = LocalAWS.environment
        environment["AWS_ACCESS_KEY_ID"] = nil
        environment["AWS_SECRET_ACCESS_KEY"] = nil
        environment["AWS_SHARED_CREDENTIALS_FILE"] = folder.write("credentials", credentials).path
        environment["AWS_CONFIG_FILE"] = folder.write("config", config).path
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        return environment
    }

    var deployerKey: String { LocalAWS.environment["AWS_ACCESS_KEY_ID"]! }
    var deployerSecret: String { LocalAWS.environment["AWS_SECRET_ACCESS_KEY"]! }

    @Test func anAssumeRoleProfileAssumesTheRoleWithItsSourceProfile() async throws {
        let folder = TemporaryDirectory()
        let environment = bare(
            folder, credentials: "[base]\naws_access_key_id = \(deployerKey)\naws_secret_access_key = \(deployerSecret)\n",
            config: "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deployer-role\nsource_profile = base\nrole_session_name = nightly\nexternal_id = team-42\n")
            .merging(["AWS_PROFILE": "deploy"]) { _, new in new }
        let configuration = try AWSConfiguration.resolve(environment: environment)
        #expect(configuration.credentialSource.hasPrefix("role arn:aws:iam::123456789012:role/deployer-role assumed with"))
        let client = AWSClient(configuration: configuration)
        #expect(try await client.callerIdentity().arn == "arn:aws:sts::123456789012:assumed-role/deployer-role/nightly")
        let credentials = try await configuration.credentials.credentials()
        #expect(credentials.sessionToken != nil)
        #expect(credentials.expiration != nil)
        // Cached: the same session until it nears expiry.
        #expect(try await configuration.credentials.credentials() == credentials)
    }

    @Test func theEnvironmentsRoleIsAssumedOnTopOfWhatTheChainFound() async throws {
        let configuration = try AWSConfiguration.resolve(environment: LocalAWS.environment)
            .assuming(RoleRequest(arn: "arn:aws:iam::123456789012:role/deployer-role", sessionName: "pipeline-prod"))
        #expect(try await AWSClient(configuration: configuration).callerIdentity().arn.hasSuffix("assumed-role/deployer-role/pipeline-prod"))
    }

    @Test func credentialProcessIsRunAndItsFailureExplained() async throws {
        let folder = TemporaryDirectory()
        let script = folder.write(
            "creds.sh", "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\"}' \"$KEY\" \"$SECRET\"\n")
        let failing = folder.write("fail.sh", "#!/bin/sh\necho 'token expired, run login' >&2\nexit 3\n")
        var environment = bare(
            // Run through sh, not executed directly: a file this (multi-threaded) test process has just written can
            // still be open in a child another test is forking, and exec would fail with "Text file busy".
            folder, config: "[default]\ncredential_process = /bin/sh \(script.path)\n[profile broken]\ncredential_process = /bin/sh \(failing.path)\n")
        environment["KEY"] = deployerKey
        environment["SECRET"] = deployerSecret
        let configuration = try AWSConfiguration.resolve(environment: environment)
        #expect(configuration.credentialSource.hasPrefix("credential_process of profile default"))
        #expect(try await AWSClient(configuration: configuration).callerIdentity().arn.hasSuffix(":user/deployer"))

        environment["AWS_PROFILE"] = "broken"
        let broken = AWSClient(configuration: try AWSConfiguration.resolve(environment: environment))
        await #expect {
            try await broken.callerIdentity()
        } throws: {
            "\($0)".contains("failed with exit status 3: token expired, run login")
        }
    }

    @Test func webIdentityTokenFileAssumesTheRoleWithAnUnsignedCall() async throws {
        let folder = TemporaryDirectory()
        var environment = bare(folder)
        environment["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/deployer-role"
        environment["AWS_WEB_IDENTITY_TOKEN_FILE"] = folder.write("token", "eyJhbGciOiJSUzI1NiJ9.test-oidc-token\n").path
        environment["AWS_ROLE_SESSION_NAME"] = "github-actions"
        let configuration = try AWSConfiguration.resolve(environment: environment)
        #expect(configuration.credentialSource.contains("web identity token"))
        let credentials = try await configuration.credentials.credentials()
        #expect(credentials.sessionToken != nil && credentials.accessKeyID != deployerKey)

        environment["AWS_WEB_IDENTITY_TOKEN_FILE"] = folder.url.appending(path: "missing").path
        await #expect {
            try await AWSConfiguration.resolve(environment: environment).credentials.credentials()
        } throws: { "\($0)".contains("cannot read a web identity token from") }
    }

    @Test func containerEndpointIsAskedWithItsTokenAndCachedUntilNearExpiry() async throws {
        let server = ServerProcess.script("credentials-server", [deployerKey, deployerSecret, "3600", "Bearer ecs-secret"])
        let port = try server.port()
        let folder = TemporaryDirectory()
        var environment = bare(folder)
        environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:\(port)/container/v2/credentials"
        environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = folder.write("token", "Bearer ecs-secret\n").path
        let configuration = try AWSConfiguration.resolve(environment: environment)
        #expect(configuration.credentialSource == "the container credentials endpoint http://127.0.0.1:\(port)/container/v2/credentials")
        let client = AWSClient(configuration: configuration)
        #expect(try await client.callerIdentity().arn.hasSuffix(":user/deployer"))
        _ = try await client.callerIdentity()
        #expect(try await handedOut(port) == 1)

        environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = folder.write("token", "Bearer wrong\n").path
        await #expect {
            try await AWSConfiguration.resolve(environment: environment).credentials.credentials()
        } throws: { "\($0)".contains("HTTP 403") }
    }

    @Test func instanceMetadataV2IsAskedWithASessionTokenAndRefreshedNearExpiry() async throws {
        // Credentials that expire within the refresh margin are fetched again on every use.
        let server = ServerProcess.script("credentials-server", [deployerKey, deployerSecret, "120"])
        let port = try server.port()
        var environment = bare(TemporaryDirectory())
        environment["AWS_EC2_METADATA_DISABLED"] = nil
        environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:\(port)"
        let configuration = try AWSConfiguration.resolve(environment: environment)
        #expect(configuration.credentialSource == "the instance metadata service at http://127.0.0.1:\(port)")
        let client = AWSClient(configuration: configuration)
        #expect(try await client.callerIdentity().arn.hasSuffix(":user/deployer"))
        _ = try await client.callerIdentity()
        #expect(try await handedOut(port) == 2)
    }

    @Test func misconfiguredProfilesAreRefusedSayingWhatToFix() throws {
        let folder = TemporaryDirectory()
        let config = """
            [profile loop-a]
            role_arn = arn:aws:iam::1:role/a
            source_profile = loop-b
            [profile loop-b]
            role_arn = arn:aws:iam::1:role/b
            source_profile = loop-a
            [profile mfa]
            role_arn = arn:aws:iam::1:role/a
            mfa_serial = arn:aws:iam::1:mfa/me
            source_profile = mfa
            [profile orphan]
            role_arn = arn:aws:iam::1:role/a
            [profile sso]
            sso_start_url = https://example.awsapps.com/start
            """
        var environment = bare(folder, config: config)
        environment["AWS_PROFILE"] = nil
        func problem(_ profile: String) -> String {
            do {
                _ = try AWSConfiguration.resolve(environment: environment.merging(["AWS_PROFILE": profile]) { _, new in new })
                return "resolved"
            } catch { return error.description }
        }
        #expect(problem("loop-a").contains("go round in a circle: loop-a → loop-b → loop-a"))
        #expect(problem("mfa").contains("MFA code"))
        #expect(problem("orphan").contains("neither source_profile, credential_source nor web_identity_token_file"))
        #expect(problem("sso").contains("aws sso login"))
        #expect(problem("nosuch").contains("the profile nosuch (AWS_PROFILE) is in neither"))
        var unset = environment
        unset["AWS_PROFILE"] = nil
        #expect {
            try AWSConfiguration.resolve(environment: unset)
        } throws: { "\($0)".contains("no AWS credentials") }
    }

    func handedOut(_ port: Int) async throws -> Int {
        Int(try await HTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(port)/count")).text) ?? -1
    }
}
