import CGreenContext

/// The greenlet of a `HubHandle.run`: runs the body and resumes the
/// waiting task, exactly once, whether the body returns, throws, or the
/// greenlet is killed before it started (then it never runs). Not generic:
/// the result goes where the body puts it.
final class BridgeGreenlet: AnyGreenlet {
    // Released when the greenlet starts or is killed before it could.
    @exclusivity(unchecked) private var body: (() throws -> Void)?
    @exclusivity(unchecked) private var continuation: UnsafeContinuation<Void, any Error>?
    /// The `BridgeLink`'s key (`resume`).
    private let link: UnsafeRawPointer

    private init(hub: Hub, body: @escaping () throws -> Void,
                 continuation: UnsafeContinuation<Void, any Error>, link: UnsafeRawPointer) {
        self.body = body
        self.continuation = continuation
        self.link = link
        let (id, parentID) = hub.newGreenletIdentity()
        super.init(hub: hub, id: id, parentID: parentID, stackSize: 0)
    }

    /// Spawns one on the calling thread's hub. Hub thread only.
    static func spawn(name: String?, body: @escaping () throws -> Void,
                      continuation: UnsafeContinuation<Void, any Error>, link: UnsafeRawPointer) -> BridgeGreenlet {
        Hub.withCurrent { hub in
            let g = BridgeGreenlet(hub: hub, body: body, continuation: continuation, link: link)
            if let name { g.customName = name }
            hub.schedule(new: g)
            return g
        }
    }

    override func runBody() {
        let run = body.unsafelyUnwrapped
        let resume = continuation.unsafelyUnwrapped
        body = nil
        continuation = nil
        do {
            try run()
            green_tsan_release(link)
            resume.resume()
        } catch {
            green_tsan_release(link)
            resume.resume(throwing: error)
        }
    }

    override func recordUnstarted(_ error: any Error) {
        body = nil
        green_tsan_release(link)
        continuation?.resume(throwing: error)
        continuation = nil
    }
}
