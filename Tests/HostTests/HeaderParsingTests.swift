@testable import NorthstarHost
import Testing

/// The checks every request passes before it reaches a route: the tenant a
/// credential names, the `Authorization` header, header whitespace.
@Suite struct HeaderParsingTests {
    @Test("a tenant id is t_, a lowercase letter or digit, then up to 62 of those, _ or -")
    func tenantIDs() {
        let good = ["t_a", "t_0", "t_acme", "t_a-b_c", "t_" + String(repeating: "z", count: 63)]
        let bad = ["", "t", "t_", "T_a", "t-a", "tt_a", "t__a", "t_-a", "t_A", "t_a b", "t_a\n", " t_a", "t_é",
                   "t_" + String(repeating: "z", count: 64), "u_a", "t_a/..", "t_a\u{0}"]
        for text in good { #expect(TenantID(text)?.rawValue == text, "\(text) should be a tenant id") }
        for text in bad { #expect(TenantID(text) == nil, "\(text.debugDescription) should be refused") }
    }

    @Test("Authorization is \"<scheme> <value>\", the value without the blanks around it")
    func authorization() {
        let parsed = Credential(authorization: "Bearer  abc.def \t")
        #expect(parsed?.scheme == "Bearer" && parsed?.value == "abc.def" && parsed?.source == .header)
        #expect(Credential(authorization: "ApiKey k_1")?.value == "k_1")
        for malformed in ["", "Bearer", "Bearer ", "Bearer \t ", "   "] {
            #expect(Credential(authorization: malformed) == nil, "\(malformed.debugDescription) should be refused")
        }
    }

    @Test("header whitespace is spaces and tabs, trimmed at both ends only")
    func whitespace() {
        #expect(" \t 42 \t".trimmingHeaderWhitespace == "42")
        #expect("a b".trimmingHeaderWhitespace == "a b")
        #expect("".trimmingHeaderWhitespace == "")
        #expect(" \t ".trimmingHeaderWhitespace == "")
        #expect("\u{A0}x".trimmingHeaderWhitespace == "\u{A0}x")  // not HTTP whitespace
    }
}
