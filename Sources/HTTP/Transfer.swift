import CCurl
import Foundation

/// One request on one easy handle: sets the handle up, performs, and reads the response back.
final class Transfer {
    let handle: EasyHandle
    let request: HTTPRequest
    let caFile: String?
    let onBody: (UnsafeRawBufferPointer) -> Void
    var headers: [(name: String, value: String)] = []
    var upload: FileHandle?
    var uploadRemaining: UInt64 = 0
    var uploadBytes: [UInt8] = []
    var uploadOffset = 0

    init(handle: EasyHandle, request: HTTPRequest, caFile: String?, onBody: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.handle = handle
        self.request = request
        self.caFile = caFile
        self.onBody = onBody
    }

    func run() -> Result<HTTPResponse, HTTPError> {
        let curl = handle.handle
        curl_easy_reset(curl)
        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { list = curl_slist_append(list, "\(header.name): \(header.value)") }
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        var redirects: UnsafeMutablePointer<curl_slist>?
        for entry in request.connectTo { redirects = curl_slist_append(redirects, entry) }
        defer { if redirects != nil { curl_slist_free_all(redirects) } }

        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = pipeline_curl_setopt_string(curl, CURLOPT_URL, request.url)
        _ = pipeline_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        if request.method == "HEAD" { _ = pipeline_curl_setopt_long(curl, CURLOPT_NOBODY, 1) }
        _ = pipeline_curl_setopt_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        _ = pipeline_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = pipeline_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        _ = pipeline_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        if request.stallTimeout > 0 {
            _ = pipeline_curl_setopt_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)
            _ = pipeline_curl_setopt_long(curl, CURLOPT_LOW_SPEED_TIME, max(1, Int(request.stallTimeout)))
        }
        _ = pipeline_curl_setopt_long(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1 << 20)
        _ = pipeline_curl_setopt_long(
            curl, CURLOPT_HTTP_VERSION, Int(request.http2PriorKnowledge ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS))
        if redirects != nil { _ = pipeline_curl_setopt_pointer(curl, CURLOPT_CONNECT_TO, UnsafeMutableRawPointer(redirects)) }
        if request.connectOnly { _ = pipeline_curl_setopt_long(curl, CURLOPT_CONNECT_ONLY, 1) }
        if request.freshConnection || request.connectOnly {
            _ = pipeline_curl_setopt_long(curl, CURLOPT_FRESH_CONNECT, 1)
            _ = pipeline_curl_setopt_long(curl, CURLOPT_FORBID_REUSE, 1)
        }
        _ = pipeline_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 1)
        _ = pipeline_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 2)
        if let caFile { _ = pipeline_curl_setopt_string(curl, CURLOPT_CAINFO, caFile) }
        _ = pipeline_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context)
        _ = pipeline_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context)
        _ = pipeline_curl_set_write_function(curl) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            transfer.onBody(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        _ = pipeline_curl_set_header_function(curl) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            transfer.header(String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self))
            return size * count
        }
        if let failure = prepareUpload(curl, context: context) { return .failure(failure) }
        defer { try? upload?.close() }

        let code = curl_easy_perform(curl)
        guard code == CURLE_OK else { return .failure(error(code)) }
        var status = 0
        _ = pipeline_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        var version = 0
        _ = pipeline_curl_getinfo_long(curl, CURLINFO_HTTP_VERSION, &version)
        return .success(
            HTTPResponse(status: status, headers: headers, body: [], version: version == Int(CURL_HTTP_VERSION_2_0) ? "2" : "1.1"))
    }

    /// Sets up the request body: bytes from memory, or a file range read as it goes.
    private func prepareUpload(_ curl: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) -> HTTPError? {
        let length: UInt64
        switch request.body {
        case .none:
            return nil
        case .bytes(let bytes):
            uploadBytes = bytes
            length = UInt64(bytes.count)
        case .file(let url, let offset, let size):
            guard let file = try? FileHandle(forReadingFrom: url) else {
                return HTTPError(kind: .request, url: request.url, message: "cannot read \(url.path)")
            }
            try? file.seek(toOffset: offset)
            upload = file
            uploadRemaining = size
            length = size
        }
        _ = pipeline_curl_setopt_long(curl, CURLOPT_UPLOAD, 1)
        _ = pipeline_curl_setopt_off(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(length))
        _ = pipeline_curl_setopt_pointer(curl, CURLOPT_READDATA, context)
        _ = pipeline_curl_set_read_function(curl) { buffer, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.read(into: buffer, capacity: size * count)
        }
        // libcurl rewinds the body when it sends the request again (a reused connection found closed, a redirect).
        _ = pipeline_curl_setopt_pointer(curl, CURLOPT_SEEKDATA, context)
        _ = pipeline_curl_set_seek_function(curl) { context, offset, origin in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            return origin == SEEK_SET && transfer.rewind(to: UInt64(offset)) ? 0 : 1  // CURL_SEEKFUNC_OK / _FAIL
        }
        return nil
    }

    /// Moves the body back to `offset` from its start.
    private func rewind(to offset: UInt64) -> Bool {
        switch request.body {
        case .none: return offset == 0
        case .bytes(let bytes):
            guard offset <= UInt64(bytes.count) else { return false }
            uploadOffset = Int(offset)
            return true
        case .file(_, let start, let size):
            guard offset <= size, let upload, (try? upload.seek(toOffset: start + offset)) != nil else { return false }
            uploadRemaining = size - offset
            return true
        }
    }

    private func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        if let upload {
            let wanted = Int(min(UInt64(capacity), uploadRemaining))
            guard wanted > 0, let data = try? upload.read(upToCount: wanted), !data.isEmpty else { return 0 }
            data.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: data.count) }
            uploadRemaining -= UInt64(data.count)
            return data.count
        }
        let count = min(capacity, uploadBytes.count - uploadOffset)
        guard count > 0 else { return 0 }
        uploadBytes.withUnsafeBytes {
            UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress! + uploadOffset, byteCount: count)
        }
        uploadOffset += count
        return count
    }

    /// Keeps the headers of the last response (a redirect or `100 Continue` starts a new list).
    private func header(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            headers.removeAll()
        } else if let colon = trimmed.firstIndex(of: ":") {
            headers.append((
                String(trimmed[..<colon]), trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            ))
        }
    }

    private func error(_ code: CURLcode) -> HTTPError {
        let message = String(cString: curl_easy_strerror(code))
        let kind: HTTPError.Kind = switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .connect
        case CURLE_OPERATION_TIMEDOUT: .timeout
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE: .tls
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .request
        default: .transfer
        }
        return HTTPError(kind: kind, url: request.url, message: message)
    }
}
