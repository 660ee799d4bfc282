// The runtime's figures through swift-metrics.
//
// The hot paths (switch, spawn, park, waits on fds) never call
// swift-metrics: each hub keeps plain integer counters on its own thread,
// most of which it needs anyway (live and parked greenlets, stack pools,
// the monitor's incidents), plus a spawn count and a count of fd watches.
// `GreenMetrics` reads them into swift-metrics when asked (`update()`,
// before a scrape) or from a timer (`start(interval:)`). Nothing of it
// runs unless a program makes one, and one made with swift-metrics'
// no-op factory (no backend bootstrapped) does nothing at all.
//
// Each hub's figures are read on its own thread (they are its unshared
// state) and recorded with a `hub` dimension, the hub's `id`: a server
// with a hub per core shows each core's share, and sums are one query
// away. When a hub's thread exits, its metrics are destroyed at the next
// update.
import CLibev
import CoreMetrics

/// Publishes every hub's `Hub.Figures` through swift-metrics, each with
/// the dimension `hub` (the hub's `id`):
///
/// | metric | kind | figure |
/// |---|---|---|
/// | `green_greenlets_spawned_total` | counter | `greenletsSpawned` |
/// | `green_greenlets_alive` | gauge | `greenletsAlive` |
/// | `green_greenlets_parked` | gauge | `greenletsParked` |
/// | `green_hub_incidents_total` | counter | `incidents` |
/// | `green_stacks_in_use` | gauge | `stacksInUse` |
/// | `green_stacks_pooled` | gauge | `stacksPooled` |
/// | `green_compact_image_bytes` | gauge | `compactImageBytes` |
/// | `green_fds_watched` | gauge | `fdsWatched` |
///
/// ```swift
/// MetricsSystem.bootstrap(PrometheusMetricsFactory())   // the program's backend
/// let metrics = GreenMetrics()
/// metrics.start(interval: 5)          // or, before each scrape:
/// try metrics.update()
/// ```
///
/// The runtime's counters cost its hot paths a plain increment at most;
/// swift-metrics is called only from `update()`, `updateCurrentHub()` and
/// the timer of `start(interval:)`. With swift-metrics' no-op factory
/// (nothing bootstrapped) every method returns at once. Make one per
/// factory: two would record the same metrics twice. `Sendable`: any
/// thread may use it; only `update(timeout:)` waits.
public final class GreenMetrics: Sendable {
    /// The metrics' names.
    public enum Name {
        /// Counter of `Hub.Figures.greenletsSpawned`.
        public static let greenletsSpawned = "green_greenlets_spawned_total"
        /// Gauge of `Hub.Figures.greenletsAlive`.
        public static let greenletsAlive = "green_greenlets_alive"
        /// Gauge of `Hub.Figures.greenletsParked`.
        public static let greenletsParked = "green_greenlets_parked"
        /// Counter of `Hub.Figures.incidents`.
        public static let hubIncidents = "green_hub_incidents_total"
        /// Gauge of `Hub.Figures.stacksInUse`.
        public static let stacksInUse = "green_stacks_in_use"
        /// Gauge of `Hub.Figures.stacksPooled`.
        public static let stacksPooled = "green_stacks_pooled"
        /// Gauge of `Hub.Figures.compactImageBytes`.
        public static let compactImageBytes = "green_compact_image_bytes"
        /// Gauge of `Hub.Figures.fdsWatched`.
        public static let fdsWatched = "green_fds_watched"
    }

    private let factory: any MetricsFactory
    /// False for the no-op factory: then nothing is ever made or read.
    private let enabled: Bool
    /// The metrics of each hub recorded so far, by hub id.
    private let recorded = Locked<[Int: HubMetrics]>([:])
    /// The periodic reporting, if started.
    private let reporting = Locked<Reporting?>(nil)

    /// Metrics made by `factory`: the bootstrapped one by default; tests
    /// pass their own (MetricsTestKit's `TestMetrics`).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        enabled = !(factory is NOOPMetricsHandler)
    }

    deinit {
        reporting.withLock { $0 }?.stop()
    }

    /// Records the calling thread's hub's figures now (making the hub if
    /// the thread has none). Never blocks.
    public func updateCurrentHub() {
        guard enabled else { return }
        let hub = Hub.current
        record(hub: hub.id, hub.figures)
    }

    /// Records every hub's figures now: the calling thread's at once, each
    /// other hub's as read on its own thread, waiting cooperatively for
    /// its answer (at most `timeout` seconds each; a hub that does not
    /// answer is blocked, and keeps the figures last recorded). Call from
    /// a greenlet, or a thread's main greenlet, before a scrape. Throws if
    /// the caller is killed or a timeout expires meanwhile.
    public func update(timeout: Double = 0.5) throws {
        guard enabled else { return }
        try forEachOtherHub { id, mailbox in
            let answer = AsyncResult<Hub.Figures>()
            guard mailbox.post({ _ = answer.set(Hub.current.figures) }) else { return }
            if try answer.wait(timeout: timeout), let figures = try? answer.get() {
                record(hub: id, figures)
            }
        }
    }

    /// Records every hub's figures every `interval` seconds from now on,
    /// from a timer on the calling thread's hub: its own figures there,
    /// each other hub's by a job posted to that hub, which records them
    /// on its own thread (nobody waits). The timer does not keep the hub's
    /// loop alive. Replaces a reporting started before; `stop()` ends it,
    /// and so does the calling thread's exit.
    public func start(interval: Double = 5) {
        guard enabled else { return }
        stop()
        let r = Reporting(metrics: self, hub: Hub.current, interval: max(interval, 0.001))
        reporting.withLock { $0 = r }
    }

    /// Ends the reporting of `start(interval:)`, if any. Any thread.
    public func stop() {
        reporting.withLock { r -> Reporting? in
            defer { r = nil }
            return r
        }?.stop()
    }

    /// One timer tick, on the reporting hub's thread.
    fileprivate func tick() {
        forEachOtherHub { _, mailbox in
            mailbox.post { [self] in
                let hub = Hub.current
                record(hub: hub.id, hub.figures)
            }
        }
    }

    /// Forgets the hubs that are gone, records the calling thread's hub's
    /// figures, and calls `body` with each other hub's id and mailbox.
    private func forEachOtherHub(_ body: (Int, HubMailbox) throws -> Void) rethrows {
        let here = Hub.current
        let hubs = HubRegistry.all
        forgetHubs(except: hubs.map(\.0))
        for (id, entry) in hubs {
            if entry.mailbox === here.mailbox {
                record(hub: id, here.figures)
            } else {
                try body(id, entry.mailbox)
            }
        }
    }

    private func record(hub id: Int, _ figures: Hub.Figures) {
        recorded.withLock { all in
            if all[id] == nil { all[id] = HubMetrics(hub: id, factory: factory) }
            all[id]!.record(figures)
        }
    }

    /// Destroys the metrics of hubs that are gone.
    private func forgetHubs(except live: [Int]) {
        let live = Set(live)
        let gone = recorded.withLock { all -> [HubMetrics] in
            let ids = all.keys.filter { !live.contains($0) }
            return ids.compactMap { all.removeValue(forKey: $0) }
        }
        for metrics in gone { metrics.destroy() }
    }
}

/// One hub's metrics, and the counters' totals already published (the
/// hub keeps totals; swift-metrics counters take increments).
private final class HubMetrics {
    let spawned: Counter
    let alive: Gauge
    let parked: Gauge
    let incidents: Counter
    let stacksInUse: Gauge
    let stacksPooled: Gauge
    let compactImageBytes: Gauge
    let fdsWatched: Gauge
    var spawnedPublished: UInt64 = 0
    var incidentsPublished: UInt64 = 0

    init(hub: Int, factory: any MetricsFactory) {
        let dimensions = [("hub", "\(hub)")]
        typealias Name = GreenMetrics.Name
        spawned = Counter(label: Name.greenletsSpawned, dimensions: dimensions, factory: factory)
        alive = Gauge(label: Name.greenletsAlive, dimensions: dimensions, factory: factory)
        parked = Gauge(label: Name.greenletsParked, dimensions: dimensions, factory: factory)
        incidents = Counter(label: Name.hubIncidents, dimensions: dimensions, factory: factory)
        stacksInUse = Gauge(label: Name.stacksInUse, dimensions: dimensions, factory: factory)
        stacksPooled = Gauge(label: Name.stacksPooled, dimensions: dimensions, factory: factory)
        compactImageBytes = Gauge(label: Name.compactImageBytes, dimensions: dimensions, factory: factory)
        fdsWatched = Gauge(label: Name.fdsWatched, dimensions: dimensions, factory: factory)
    }

    func record(_ f: Hub.Figures) {
        if f.greenletsSpawned > spawnedPublished {
            spawned.increment(by: f.greenletsSpawned - spawnedPublished)
            spawnedPublished = f.greenletsSpawned
        }
        if f.incidents > incidentsPublished {
            incidents.increment(by: f.incidents - incidentsPublished)
            incidentsPublished = f.incidents
        }
        alive.record(f.greenletsAlive)
        parked.record(f.greenletsParked)
        stacksInUse.record(f.stacksInUse)
        stacksPooled.record(f.stacksPooled)
        compactImageBytes.record(f.compactImageBytes)
        fdsWatched.record(f.fdsWatched)
    }

    func destroy() {
        for counter in [spawned, incidents] { counter.destroy() }
        for gauge in [alive, parked, stacksInUse, stacksPooled, compactImageBytes, fdsWatched] { gauge.destroy() }
    }
}

/// The timer of `GreenMetrics.start(interval:)`.
///
/// `@unchecked Sendable`: `mailbox` is thread-safe, `metrics` a weak
/// reference written in init only. `timer` and `loop` are used on the
/// hub's thread only: made there, stopped there (`stop` from elsewhere
/// posts to the mailbox); the timer's `data` holds a retain on this object
/// until then. If the hub is gone, its loop is too, and `stop` only frees.
private final class Reporting: @unchecked Sendable {
    private weak var metrics: GreenMetrics?
    private let mailbox: HubMailbox
    private let loop: OpaquePointer
    private let timer: UnsafeMutablePointer<ev_timer>

    /// Starts the timer on `hub`, the calling thread's.
    init(metrics: GreenMetrics, hub: Hub, interval: Double) {
        self.metrics = metrics
        mailbox = hub.mailbox
        loop = hub.loop
        timer = .allocate(capacity: 1)
        timer.initialize(to: ev_timer())
        green_ev_timer_init(timer, { _, w, _ in
            let r = Unmanaged<Reporting>.fromOpaque(w!.pointee.data).takeUnretainedValue()
            r.metrics?.tick()
        }, interval, interval)
        // Retained by the timer until it is stopped.
        timer.pointee.data = Unmanaged.passRetained(self).toOpaque()
        ev_timer_start(loop, timer)
        // A reporting timer is no reason to keep the loop running (and
        // must not hide a deadlock from the hub).
        ev_unref(loop)
    }

    /// Stops the timer, on its hub's thread (at once when called there).
    /// If the hub is gone, so is its loop: only the memory is left.
    func stop() {
        if mailbox.isHubThread { return stopTimer() }
        if !mailbox.post({ [self] in stopTimer() }) { release() }
    }

    /// On the hub's thread.
    private func stopTimer() {
        ev_ref(loop)
        ev_timer_stop(loop, timer)
        release()
    }

    private func release() {
        timer.deallocate()
        Unmanaged.passUnretained(self).release()
    }
}
