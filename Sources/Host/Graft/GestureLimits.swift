/// Bounds on what one gesture may hold (`limits` in config).
public struct GestureLimits: Sendable {
    /// Samples in one append (REST or WS).
    public var maxBatchSamples: Int
    /// Samples in one gesture, all batches together.
    public var maxSamples: Int
    /// The largest time offset, in milliseconds from the gesture's start.
    public var maxDurationMs: Double
    /// Distinct pointers in one gesture. Each is a line of the gesture's
    /// state, which every append reads and writes whole on the store's
    /// writer: without a bound, a gesture of a new pointer per sample made
    /// appends cost seconds each.
    public var maxPointers: Int

    public init(maxBatchSamples: Int = 1000, maxSamples: Int = 1_000_000, maxDurationMs: Double = 3_600_000, maxPointers: Int = 1000) {
        self.maxBatchSamples = maxBatchSamples
        self.maxSamples = maxSamples
        self.maxDurationMs = maxDurationMs
        self.maxPointers = maxPointers
    }
}
