// What a debugger needs to list a process's greenlets without running any
// of its code (a core file cannot): the hubs, in the C table
// `green_debug` (green_debug.h), and where the fields it reads lie in a
// `Hub` and an `AnyGreenlet`. Tools/gdb/green.py reads both.
//
// The offsets come from the Swift runtime's own reflection metadata
// (`_forEachField`, the field-offset vector of the class metadata, which
// the compiler fills with the offsets its code uses), looked up by
// property name and checked against the property's type. They are then
// checked against the hub being registered: each field read through its
// offset must equal the property read normally. A layout that fails either
// check is published as distrusted, and the script says so instead of
// reading nonsense. Taking `&object.property` instead would not do: it
// cannot name a `let` (`isCompact`), and for `unowned(unsafe)` storage
// (`current`) Swift may pass a temporary copy rather than the storage.
//
// Nothing here runs on a switch, park or wake-up: hubs are registered when
// made and unregistered when they go.
@_spi(Reflection) import Swift
import CGreenContext

enum HubDebugInfo {
    /// Lists `hub` for debuggers, with the layout checked against it and
    /// its main greenlet. At the end of the hub's init.
    static func register(_ hub: Hub) {
        var layout = typeLayout.layout
        let verified = typeLayout.checked && check(layout, against: hub)
        green_debug_set_swift_layout(&layout, verified ? 1 : 0)
        green_debug_register_hub(Unmanaged.passUnretained(hub).toOpaque(), UInt64(hub.id), UInt64(hub.thread))
    }

    /// Takes `hub` off the list: before its object can go.
    static func unregister(_ hub: UnsafeMutableRawPointer) {
        green_debug_unregister_hub(hub)
    }

    /// The offsets, from the types alone, and whether everything the types
    /// tell checked out (all the fields found, with the types expected).
    private static let typeLayout: (layout: green_debug_swift_layout, checked: Bool) = {
        var l = green_debug_swift_layout()
        let g = fields(of: AnyGreenlet.self)
        let x = fields(of: AnyGreenlet.Extras.self)
        let h = fields(of: Hub.self)
        let s = fields(of: StaticString.self)
        var missing = 0
        // `type` nil: one of the standard library's builtin types, which
        // cannot be named here (StaticString's words; checked on a value).
        func offset(_ table: [String: Field], _ name: String, _ type: Any.Type?) -> Int32 {
            guard let f = table[name], type == nil || f.type == type, let o = Int32(exactly: f.offset) else {
                missing += 1
                return -1
            }
            return o
        }
        l.greenlet_id = offset(g, "id", UInt64.self)
        l.greenlet_parent_id = offset(g, "parentID", UInt64.self)
        l.greenlet_state = offset(g, "state", AnyGreenlet.State.self)
        l.greenlet_context = offset(g, "context", UnsafeMutablePointer<green_context>?.self)
        l.greenlet_waiting_on = offset(g, "waitingOn", StaticString.self)
        l.greenlet_parked_since = offset(g, "parkedSince", Double.self)
        l.greenlet_live_next = offset(g, "liveNext", Unmanaged<AnyGreenlet>?.self)
        l.greenlet_is_compact = offset(g, "isCompact", Bool.self)
        l.greenlet_extras = offset(g, "extras", AnyGreenlet.Extras?.self)
        l.extras_custom_name = offset(x, "customName", String?.self)
        l.static_string_start = offset(s, "_startPtrOrData", nil)
        l.static_string_count = offset(s, "_utf8CodeUnitCount", nil)
        l.static_string_flags = offset(s, "_flags", nil)
        l.hub_live_head = offset(h, "liveHead", Unmanaged<AnyGreenlet>?.self)
        l.hub_main_greenlet = offset(h, "mainGreenlet", AnyGreenlet?.self)
        l.hub_hub_greenlet = offset(h, "hubGreenlet", AnyGreenlet?.self)
        l.hub_current = offset(h, "current", AnyGreenlet?.self)
        l.hub_loop_time = offset(h, "loopTime", Double.self)
        l.hub_time_offset = offset(h, "timeOffset", Double.self)
        l.hub_virtual_clock = offset(h, "virtualClock", VirtualClock?.self)
        // The state byte a reader decodes is the case's index, which is
        // its raw value here (the script names them in this order).
        let states: [AnyGreenlet.State] = [.pending, .ready, .running, .parked, .finished]
        let statesEncoded = MemoryLayout<AnyGreenlet.State>.size == 1
            && states.enumerated().allSatisfy { i, s in
                s.rawValue == UInt8(i) && unsafeBitCast(s, to: UInt8.self) == UInt8(i)
            }
        return (l, missing == 0 && statesEncoded && staticStringReads(l))
    }()

    private struct Field {
        let offset: Int
        let type: Any.Type
    }

    /// The stored properties of `type` (a class's include its
    /// superclasses'), by name.
    private static func fields(of type: Any.Type) -> [String: Field] {
        // `_EachFieldOptions.classType` is a static var, which Swift 6 will
        // not read: its raw value, 1. Were it another, `_forEachField`
        // would refuse a class (false) and every offset would be missing.
        let options = _EachFieldOptions(rawValue: type is AnyClass ? 1 : 0)
        var out: [String: Field] = [:]
        let complete = _forEachField(of: type, options: options) { name, offset, fieldType, _ in
            out[String(cString: name)] = Field(offset: offset, type: fieldType)
            return true
        }
        return complete ? out : [:]
    }

    /// Whether a StaticString's words are where the layout says.
    private static func staticStringReads(_ l: green_debug_swift_layout) -> Bool {
        let probe: StaticString = "swift-green"
        guard probe.hasPointerRepresentation else { return false }
        return withUnsafeBytes(of: probe) { raw in
            raw.load(fromByteOffset: Int(l.static_string_start), as: UInt.self) == UInt(bitPattern: probe.utf8Start)
                && raw.load(fromByteOffset: Int(l.static_string_count), as: UInt.self) == UInt(probe.utf8CodeUnitCount)
        }
    }

    /// Whether every field of `hub` and of its main greenlet, read at its
    /// offset, is what the property says.
    private static func check(_ l: green_debug_swift_layout, against hub: Hub) -> Bool {
        func address(_ object: AnyObject?) -> UInt {
            object.map { UInt(bitPattern: Unmanaged.passUnretained($0).toOpaque()) } ?? 0
        }
        func read<T>(_ object: AnyObject, _ offset: Int32, as: T.Type) -> T {
            UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()).loadUnaligned(fromByteOffset: Int(offset),
                                                                                       as: T.self)
        }
        let main: AnyGreenlet = hub.mainGreenlet
        var ok = read(hub, l.hub_main_greenlet, as: UInt.self) == address(main)
        ok = ok && read(hub, l.hub_hub_greenlet, as: UInt.self) == address(hub.hubGreenlet)
        ok = ok && read(hub, l.hub_current, as: UInt.self) == address(hub.current)
        ok = ok && read(hub, l.hub_live_head, as: UInt.self) == UInt(bitPattern: hub.liveHead?.toOpaque())
        ok = ok && read(hub, l.hub_loop_time, as: UInt64.self) == hub.loopTime.bitPattern
        ok = ok && read(hub, l.hub_time_offset, as: UInt64.self) == hub.timeOffset.bitPattern
        ok = ok && read(hub, l.hub_virtual_clock, as: UInt.self) == address(hub.virtualClock)
        ok = ok && read(main, l.greenlet_id, as: UInt64.self) == main.id
        ok = ok && read(main, l.greenlet_parent_id, as: UInt64.self) == main.parentID
        ok = ok && read(main, l.greenlet_state, as: UInt8.self) == main.state.rawValue
        ok = ok && read(main, l.greenlet_context, as: UInt.self) == UInt(bitPattern: main.context)
        ok = ok && main.waitingOn.hasPointerRepresentation
            && read(main, l.greenlet_waiting_on + l.static_string_start, as: UInt.self)
                == UInt(bitPattern: main.waitingOn.utf8Start)
        ok = ok && read(main, l.greenlet_parked_since, as: UInt64.self) == main.parkedSince.bitPattern
        ok = ok && read(main, l.greenlet_live_next, as: UInt.self) == UInt(bitPattern: main.liveNext?.toOpaque())
        ok = ok && read(main, l.greenlet_is_compact, as: UInt8.self) == (main.isCompact ? 1 : 0)
        // The main greenlet is named, so it has extras.
        ok = ok && read(main, l.greenlet_extras, as: UInt.self) == address(main.extras)
        if ok, let extras = main.extras {
            let name = read(extras, l.extras_custom_name, as: (UInt64, UInt64).self)
            ok = withUnsafeBytes(of: extras.customName) { $0.load(as: (UInt64, UInt64).self) } == name
        } else {
            ok = false
        }
        return ok
    }
}
