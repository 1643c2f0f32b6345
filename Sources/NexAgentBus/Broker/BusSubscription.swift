/// One subscription held by a bus peer (a client's `SUB`, or one of the node's link).
final class BusSubscription {
    let pattern: String
    let queue: String?
    let sid: String
    unowned let client: any BusPeer
    /// Messages left before an `UNSUB <sid> <max>` ends it.
    var remaining: Int?

    init(pattern: String, queue: String?, sid: String, client: any BusPeer) {
        self.pattern = pattern
        self.queue = queue
        self.sid = sid
        self.client = client
    }
}
