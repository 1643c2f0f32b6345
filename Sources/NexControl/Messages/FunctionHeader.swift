/// Headers of function invocations.
public enum FunctionHeader {
    /// On a reply to a trigger message: the invocation failed, and why. The body is empty.
    /// (Nex 0.2 left the requester without any reply.)
    public static let error = "Nex-Function-Error"
    /// On the node-to-agent trigger request: the subject the message arrived on.
    public static let triggerSubject = "x-nex-trigger-subject"
}
