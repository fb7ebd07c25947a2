import CCurl

/// libcurl, initialised once per process.
public enum Curl {
    private static let initialised: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    /// Makes sure `curl_global_init` has run; every entry point of this module calls it first.
    public static func ensureInitialised() {
        _ = initialised
    }

    /// What the loaded libcurl is and can do.
    public static var info: (version: String, ssl: String?, http2: Bool) {
        ensureInitialised()
        let data = curl_version_info(CURLVERSION_TENTH).pointee
        let ssl = data.ssl_version.map { String(cString: $0) }
        return (String(cString: data.version), ssl, (data.features & CURL_VERSION_HTTP2) != 0)
    }
}

/// An error from libcurl, naming the call that failed and libcurl's own message.
public struct CurlError: Error, CustomStringConvertible {
    /// The libcurl function that failed.
    public let call: String
    /// libcurl's code.
    public let code: CURLcode

    /// "curl_easy_setopt(CURLOPT_URL) failed: URL using bad/illegal format or missing URL"
    public var description: String { "\(call) failed: \(String(cString: curl_easy_strerror(code)))" }
}

/// One libcurl easy handle, freed with its owner. Unchecked: libcurl allows a handle on any thread but one at a
/// time; the client takes it from its idle list for one transfer and puts it back after.
public final class EasyHandle: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Makes a new handle.
    public init() throws(CurlError) {
        Curl.ensureInitialised()
        guard let handle = curl_easy_init() else { throw CurlError(call: "curl_easy_init", code: CURLE_OUT_OF_MEMORY) }
        self.handle = handle
    }

    deinit {
        curl_easy_cleanup(handle)
    }

    /// Sets the URL the next transfer goes to.
    public func setURL(_ url: String) throws(CurlError) {
        let code = pipeline_curl_setopt_string(handle, CURLOPT_URL, url)
        guard code == CURLE_OK else { throw CurlError(call: "curl_easy_setopt(CURLOPT_URL)", code: code) }
    }

    /// The URL the handle last went to or is set to go to, as libcurl sees it.
    public var effectiveURL: String? {
        var pointer: UnsafeMutablePointer<CChar>?
        let code = withUnsafeMutablePointer(to: &pointer) {
            pipeline_curl_getinfo_pointer(handle, CURLINFO_EFFECTIVE_URL, $0)
        }
        guard code == CURLE_OK, let pointer else { return nil }
        return String(cString: pointer)
    }
}
