import CGreenContext

extension Hub {
    /// What a hub holds and has done, read from counters it keeps anyway
    /// (plain integers on its own thread: reading them costs the hub
    /// nothing). `GreenMetrics` publishes them.
    public struct Figures: Equatable, Sendable {
        /// Greenlets ever spawned on the hub.
        public var greenletsSpawned: UInt64
        /// Spawned greenlets that have not finished (the thread's main
        /// greenlet is not one).
        public var greenletsAlive: Int
        /// Of those, the ones parked in a blocking call.
        public var greenletsParked: Int
        /// Blocked-hub incidents the monitor reported on this hub (see
        /// `HubMonitor`).
        public var incidents: UInt64
        /// Stacks of the hub's pools in use, the hub's own included
        /// (`stackStats.inUse`).
        public var stacksInUse: Int
        /// Stacks of the hub's pools kept warm for reuse
        /// (`stackStats.free`).
        public var stacksPooled: Int
        /// Heap bytes held by compact greenlets' stack images (see
        /// `StackMode`).
        public var compactImageBytes: Int
        /// File descriptors greenlets wait on (one per wait; a `select`
        /// over n fds counts n).
        public var fdsWatched: Int
    }

    /// The hub's figures now. On the hub's thread.
    public var figures: Figures {
        let stacks = stackStats
        let mainParked = mainGreenlet.state == .parked ? 1 : 0
        return Figures(greenletsSpawned: spawnedGreenlets,
                       greenletsAlive: liveGreenlets,
                       greenletsParked: parkedCount - mainParked,
                       incidents: green_monitor_incidents(monitor),
                       stacksInUse: stacks.inUse,
                       stacksPooled: stacks.free,
                       compactImageBytes: sharedStack.map { Int($0.pointee.image_bytes) } ?? 0,
                       fdsWatched: fdWatches)
    }
}
