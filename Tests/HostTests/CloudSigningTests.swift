import Foundation
import NorthstarCloud
import Testing

/// The s3 plugin's request signing against AWS's published Signature V4
/// example ("GET Object" with a Range header), and the small parsers the
/// cloud plugins share.
@Suite struct CloudSigningTests {
    let signer = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                             secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")

    @Test("AWS's GET Object example signs to its published signature")
    func signsAWSExample() {
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        let headers = signer.sign(method: "GET", path: "/test.txt", query: [],
                                  headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
                                  payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        let authorization = headers.first { $0.0 == "authorization" }?.1
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20130524T000000Z")
    }

    @Test("a changed byte anywhere changes the signature")
    func signatureCoversEveryByte() {
        let date = Date(timeIntervalSince1970: 1_369_353_600)
        func signature(_ path: String, _ range: String) -> String? {
            signer.sign(method: "GET", path: path, query: [], headers: [("host", "examplebucket.s3.amazonaws.com"), ("range", range)],
                        payloadHash: SigV4Signer.emptyPayloadHash, date: date).first { $0.0 == "authorization" }?.1
        }
        #expect(signature("/test.txt", "bytes=0-9") != signature("/test.txt", "bytes=0-8"))
        #expect(signature("/test.txt", "bytes=0-9") != signature("/test.txu", "bytes=0-9"))
    }

    @Test("keys and query parameters are encoded as S3 expects")
    func encodesLikeS3() {
        #expect(SigV4Signer.uriEncode("tenants/t_a/dev/media/a b+c~ü.png", keepSlash: true) == "tenants/t_a/dev/media/a%20b%2Bc~%C3%BC.png")
        #expect(SigV4Signer.uriEncode("a/b") == "a%2Fb")
        #expect(SigV4Signer.canonicalQuery([("prefix", "t/x"), ("list-type", "2"), ("uploads", "")]) == "list-type=2&prefix=t%2Fx&uploads=")
    }

    @Test("path-style and virtual-hosted addresses")
    func addresses() {
        let path = S3Address(scheme: "http", host: "127.0.0.1", port: 9000, bucket: "northstar", virtualHosted: false)
        #expect(path.location("tenants/t_a/dev/raw/as_x/a b.png") == ("http://127.0.0.1:9000", "127.0.0.1:9000", "/northstar/tenants/t_a/dev/raw/as_x/a%20b.png"))
        #expect(path.location(nil) == ("http://127.0.0.1:9000", "127.0.0.1:9000", "/northstar"))
        let virtual = S3Address(scheme: "https", host: "s3.eu-west-1.amazonaws.com", port: nil, bucket: "acme", virtualHosted: true)
        #expect(virtual.location("k/v.txt") == ("https://acme.s3.eu-west-1.amazonaws.com", "acme.s3.eu-west-1.amazonaws.com", "/k/v.txt"))
        #expect(virtual.location(nil) == ("https://acme.s3.eu-west-1.amazonaws.com", "acme.s3.eu-west-1.amazonaws.com", "/"))
    }

    @Test("XML text and entities")
    func parsesXMLAndDates() {
        let xml = "<R><Contents><Key>a&amp;b&#x2F;c</Key></Contents><Contents><Key>d</Key></Contents><IsTruncated>true</IsTruncated></R>"
        #expect(XMLText.elements("Contents", in: xml).compactMap { XMLText.value("Key", in: $0) } == ["a&b/c", "d"])
        #expect(XMLText.value("IsTruncated", in: xml) == "true")
        #expect(XMLText.value("Missing", in: xml) == nil)
        #expect(HTTPDate.iso8601("2026-11-26T10:00:00.000Z") == 1_795_687_200_000)
        #expect(HTTPDate.imfFixdate("Thu, 26 Nov 2026 10:00:00 GMT") == 1_795_687_200_000)
    }
}
