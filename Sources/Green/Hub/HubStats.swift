// Counters of a hub's compact greenlets and stack pools.
import CGreenContext
import CLibev
import Glibc

extension Hub {
    /// Compact greenlets' run stack and copies (see `StackMode`).
    public struct CompactStats: Sendable {
        /// Stack images saved (a compact greenlet leaving the run stack to
        /// another).
        public var saves: UInt64
        /// Stack images restored (a compact greenlet coming back to the
        /// run stack).
        public var restores: UInt64
        /// Bytes copied by the saves and restores together.
        public var bytesCopied: UInt64
    }

    /// Figures of this hub's compact greenlets so far. Call on the hub's
    /// thread.
    public var compactStats: CompactStats {
        guard let s = sharedStack else { return CompactStats(saves: 0, restores: 0, bytesCopied: 0) }
        return CompactStats(saves: s.pointee.saves, restores: s.pointee.restores, bytesCopied: s.pointee.bytes_copied)
    }

    /// Bytes of stack beyond which a parked compact greenlet is reported
    /// (on stderr, or to the logger: see `GreenDiagnostics`), once per
    /// greenlet (0: never). 64 KiB by default.
    public var compactReportLimit: Int {
        get { sharedStack.map { Int($0.pointee.report_limit) } ?? pendingCompactReportLimit }
        set {
            pendingCompactReportLimit = newValue
            sharedStack?.pointee.report_limit = newValue
        }
    }

    /// Counters of a hub's stack pools, summed over stack sizes.
    public struct StackStats: Equatable, Sendable {
        /// Stacks ever carved out of slabs (in use or free).
        public var total: Int
        /// Stacks held by greenlets (or the hub) now.
        public var inUse: Int
        /// Stacks kept for reuse.
        public var free: Int
        /// Memory mappings (slabs) holding them.
        public var slabs: Int
        /// Stacks whose guard page is installed with madvise (no split
        /// mapping; preferred where the kernel has it).
        public var madviseGuarded: Int
        /// Stacks whose guard page is an mprotect(PROT_NONE) page.
        public var mprotectGuarded: Int
        /// Stacks without a guard page, with only a canary checked at each
        /// switch and at release.
        public var canaryOnly: Int
    }

    /// The hub's stack pools, summed. Call on the hub's thread.
    public var stackStats: StackStats {
        var s = StackStats(total: 0, inUse: 0, free: 0, slabs: 0,
                           madviseGuarded: 0, mprotectGuarded: 0, canaryOnly: 0)
        for (_, pool) in stackPools {
            s.total += green_stack_pool_total(pool)
            s.inUse += green_stack_pool_in_use(pool)
            s.free += green_stack_pool_free_count(pool)
            s.slabs += green_stack_pool_slab_count(pool)
            s.madviseGuarded += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_MADVISE.rawValue))
            s.mprotectGuarded += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_MPROTECT.rawValue))
            s.canaryOnly += green_stack_pool_guarded(pool, Int32(GREEN_GUARD_CANARY.rawValue))
        }
        return s
    }
}
