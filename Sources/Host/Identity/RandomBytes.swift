#if canImport(Glibc)
import Glibc
#endif

/// Random bytes for ids from the system's generator in one call: one id,
/// one draw (the standard library's generator makes a system call per 8
/// bytes).
enum RandomBytes {
    static func make(_ count: Int) -> [UInt8] {
        // An empty buffer may have no address to hand to C.
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { buffer in
            #if canImport(Glibc)
            // glibc 2.36 and later: one getrandom(2) a call, never a failure.
            arc4random_buf(buffer.baseAddress!, buffer.count)
            #else
            var generator = SystemRandomNumberGenerator()
            for index in buffer.indices { buffer[index] = generator.next() }
            #endif
        }
        return bytes
    }
}
