import Foundation
import Runner
import StageContract
import Testing

private let secret = "s3cr3t-VALUE/with+odd \"chars\"\\"

private func streamed(_ text: String, masker: SecretMasker, chunk: Int) -> String {
    var stream = MaskingStream(masker: masker)
    var out: [UInt8] = []
    let bytes = Array(text.utf8)
    for start in stride(from: 0, to: bytes.count, by: chunk) {
        bytes[start..<min(start + chunk, bytes.count)].withUnsafeBytes { stream.feed($0, into: &out) }
    }
    stream.finish(into: &out)
    return String(decoding: out, as: UTF8.self)
}

@Suite struct SecretMaskerTests {
    let masker: SecretMasker = {
        let masker = SecretMasker()
        masker.add([secret])
        return masker
    }()

    @Test func theValueItselfIsMasked() {
        #expect(masker.mask("token=\(secret); again \(secret)") == "token=***; again ***")
    }

    @Test(arguments: [1, 2, 3, 7, 64])
    func aValueSplitAcrossChunksIsStillMasked(chunk: Int) {
        let text = "start \(secret) middle \(secret)\(secret) end\n"
        #expect(streamed(text, masker: masker, chunk: chunk) == "start *** middle ****** end\n")
    }

    @Test func textThatOnlyLooksLikeTheStartIsKept() {
        #expect(streamed("s3cr3t-VAL is not it", masker: masker, chunk: 3) == "s3cr3t-VAL is not it")
    }

    @Test(arguments: 0..<3)
    func base64AtEveryAlignmentIsMasked(prefix: Int) {
        let payload = Array("abc".prefix(prefix).utf8) + Array(secret.utf8) + Array("tail".utf8)
        let encoded = Data(payload).base64EncodedString()
        let masked = masker.mask(encoded)
        #expect(masked.contains("***"), "alignment \(prefix): \(encoded)")
        #expect(masked.count < encoded.count)
        let urlSafe = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        #expect(masker.mask(urlSafe).contains("***"))
    }

    @Test func jsonEscapedAndURLEncodedFormsAreMasked() throws {
        let json = String(decoding: try JSONEncoder().encode(["token": secret]), as: UTF8.self)
        #expect(!json.contains(secret))
        #expect(masker.mask(json) == #"{"token":"***"}"#)
        let url = secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~")))!
        #expect(masker.mask("https://x/?t=\(url)") == "https://x/?t=***")
    }

    /// Python's json.dumps (and other ASCII-only encoders) write what is not ASCII as \\uXXXX escapes.
    @Test func asciiOnlyJSONEscapesAreMasked() {
        let masker = SecretMasker()
        masker.add(["pässwörd-ñ😀"])
        #expect(masker.mask(#"{"p": "p\u00e4ssw\u00f6rd-\u00f1\ud83d\ude00"}"#) == #"{"p": "***"}"#)
        #expect(masker.mask(#"p\u00E4ssw\u00F6rd-\u00F1\uD83D\uDE00"#) == "***")
    }

    /// Python's urllib.parse.quote keeps '/' (AWS secret keys often hold one).
    @Test func urlEncodingThatKeepsSlashesIsMasked() {
        let masker = SecretMasker()
        masker.add(["abc/def+ghi=jkl"])
        #expect(masker.mask("x=abc/def%2Bghi%3Djkl&y") == "x=***&y")
    }

    @Test func aMultiLineSecretIsMaskedLineByLine() {
        let masker = SecretMasker()
        masker.add(["-----BEGIN KEY-----\nAAAAline-one-of-key\nBBBBline-two-of-key\n-----END KEY-----"])
        #expect(masker.mask("got BBBBline-two-of-key alone") == "got *** alone")
        #expect(!masker.mask("-----BEGIN KEY-----\nAAAAline-one-of-key\n").contains("AAAA"))
    }

    @Test func veryShortValuesAreNotMasked() {
        let masker = SecretMasker()
        masker.add(["abc"])
        #expect(masker.mask("abcdef") == "abcdef")
    }
}

@Suite struct StageOutputsTests {
    @Test func keyValueAndHeredocLines() {
        let parsed = StageOutputs.parse("digest=sha256:abc\nempty=\nnotes<<EOF\nline 1\nline 2\nEOF\nx=a=b\n")
        #expect(parsed == ["digest": "sha256:abc", "empty": "", "notes": "line 1\nline 2", "x": "a=b"])
    }

    @Test func variableNames() {
        #expect(StageOutputs.variableName(stage: "user-service.push", key: "digest") == "PIPELINE_OUTPUT_USER_SERVICE_PUSH_DIGEST")
    }
}
