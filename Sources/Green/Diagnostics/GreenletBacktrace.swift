// Backtraces of greenlets, parked or running, dedicated or compact: the
// frame-pointer chain (Swift keeps frame pointers on Linux, as does the C
// of the shims) walked from the registers the context switch left on the
// greenlet's stack (frames.c). A compact greenlet whose stack is on the
// heap is read from its image as if it stood at its own addresses: nothing
// is copied back onto the run stack, which another greenlet may be using,
// and no read leaves the greenlet's stack. Nothing here is on the switch
// path: the switch already saves all it needs.
import CGreenContext

/// Code addresses of a greenlet's frames, innermost first, each one
/// inside its call (a return address less one), as the symbolizer wants
/// them.
typealias FrameAddresses = [UInt64]

enum GreenletBacktrace {
    /// The most frames kept for one greenlet.
    static let frameLimit = 48

    /// The frames of the caller, running on a stack [low, high) (its
    /// greenlet's, or the thread's own).
    @inline(never)
    static func ofCaller(stack: (UInt, UInt)) -> FrameAddresses {
        walk { green_frames_here(stack.0, stack.1, $0, $1) }
    }

    /// The frames of a suspended context (empty if they cannot be told).
    /// On the context's hub thread, while it stays suspended; `ownStack`:
    /// that thread's own stack (`threadStackBounds()`, asked once: it is
    /// slow on a process's main thread, which reads /proc/self/maps).
    static func ofSuspended(_ ctx: UnsafeMutablePointer<green_context>, ownStack: (UInt, UInt)) -> FrameAddresses {
        var start = green_frame_start()
        guard green_context_frame_start(ctx, ownStack.0, ownStack.1, &start) == 0 else { return [] }
        return walk { green_frames_walk(&start, $0, $1) }
    }

    private static func walk(_ body: (UnsafeMutablePointer<UInt64>, Int32) -> Int32) -> FrameAddresses {
        FrameAddresses(unsafeUninitializedCapacity: frameLimit) { buffer, count in
            count = Int(body(buffer.baseAddress!, Int32(frameLimit)))
        }
    }

    /// The calling thread's own stack, [low, high): where a thread's main
    /// greenlet runs. (0, 0) if it cannot be told.
    static func threadStackBounds() -> (UInt, UInt) {
        var low: UInt = 0, high: UInt = 0
        return green_thread_stack_bounds(&low, &high) == 0 ? (low, high) : (0, 0)
    }
}
