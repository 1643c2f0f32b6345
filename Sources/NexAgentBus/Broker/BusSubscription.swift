/// One `SUB` held by a bus client.
final class BusSubscription {
    let pattern: String
    let queue: String?
    let sid: String
    unowned let client: BusClientHandler
    /// Messages left before an `UNSUB <sid> <max>` ends it.
    var remaining: Int?

    init(pattern: String, queue: String?, sid: String, client: BusClientHandler) {
        self.pattern = pattern
        self.queue = queue
        self.sid = sid
        self.client = client
    }
}
