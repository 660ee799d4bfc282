# swift-green's greenlets in gdb: every hub's greenlets, and the backtrace of
# any of them, in a live process or in a core file.
#
#   (gdb) source Tools/gdb/green.py
#   (gdb) green-list          every hub's greenlets: id, name, state, what a
#                             parked one waits on and for how long, compact
#   (gdb) green-bt 7          greenlet 7's backtrace
#
#   gdb -batch -nx -ex 'source Tools/gdb/green.py' -ex green-list PROGRAM CORE
#   gdb -batch -nx -p PID -ex 'source Tools/gdb/green.py' -ex green-list -ex 'green-bt 7'
#
# Nothing here calls into the program: it reads memory only, so a core file
# does as well as a live process, and a live one is left as it was. The
# program keeps a table for it, `green_debug` (Sources/CGreenContext/
# include/green_debug.h): the hubs, and the byte offsets of the fields read
# here in the Swift objects and the C structures. The symbol must be there
# (not stripped); no debug information is needed to list, and with it the
# backtraces get file:line.
#
# A parked greenlet is unwound as the runtime's own dump does it
# (Sources/CGreenContext/frames.c): from the registers its switch left on
# its stack (or its ucontext), then along the frame-pointer chain. A
# compact greenlet whose stack was copied to the heap is read from that
# image, at the addresses it will have again. The running greenlet of a
# hub is its thread's: its frames are gdb's own backtrace of that thread.
# Swift names are demangled with swift-demangle (GREEN_SWIFT_DEMANGLE, PATH,
# or /opt/swift/usr/bin) where there is one.
#
# Core files. One the kernel writes holds every stack. gdb's `gcore` does
# not, on Linux 6.13 and later: it reads memory a megabyte at a time and
# saves zeros for any megabyte it cannot read whole, and the guard pages
# swift-green installs with MADV_GUARD_INSTALL inside its stack slabs
# cannot be read. For gcore, run the program with GREEN_STACK_GUARD=mprotect
# (guard pages of their own mapping, which gcore skips); green-bt says when
# a stack reads as zeros.
#
# Wait times: to now in a live process; in a core, which does not say when
# it was taken, to each hub's last pass through its loop (when it last
# polled, a time green-list prints), so a lower bound.

import os
import shutil
import struct
import subprocess
import time

import gdb

MAGIC = 0x316762646E657267  # "grendbg1"
VERSION = 2
STATES = ["pending", "ready", "running", "parked", "finished"]

# The fields of green_debug_info, in order (green_debug.h).
HEADER = struct.Struct("<QIIIIIIiI")
HEADER_FIELDS = ["magic", "version", "size", "c_layout_size", "swift_layout_size", "max_hubs",
                 "hubs_dropped", "swift_layout_state", "arch"]
C_FIELDS = ["context_sp", "context_ucontext", "context_stack", "context_id", "context_name",
            "context_name_size", "context_kind", "context_shared", "context_saved", "context_saved_size",
            "stack_base", "stack_size", "shared_stack", "shared_top", "shared_owner",
            "ucontext_pc", "ucontext_sp", "ucontext_fp", "switch_fp", "switch_pc", "switch_size"]
SWIFT_FIELDS = ["greenlet_id", "greenlet_parent_id", "greenlet_state", "greenlet_context",
                "greenlet_waiting_on", "greenlet_parked_since", "greenlet_live_next", "greenlet_is_compact",
                "greenlet_extras", "extras_custom_name",
                "static_string_start", "static_string_count", "static_string_flags",
                "hub_live_head", "hub_main_greenlet", "hub_hub_greenlet", "hub_current", "hub_loop_time",
                "hub_time_offset", "hub_virtual_clock"]
HUB_SLOT = struct.Struct("<QQQ")  # hub object, its number, its thread (pthread_t)

MAX_FRAMES = 256
MAX_GREENLETS = 1000000
# A context without a stack of its own (a thread's main greenlet) is read
# from its stack pointer up to this far at most: the walk stops at the
# first frame pointer that does not move up, or that cannot be read.
THREAD_STACK_LIMIT = 1 << 30


class GreenError(Exception):
    """Something that stops a command, said to the user as is."""


class Fields(object):
    """Named offsets, unpacked from an array of int32."""

    def __init__(self, names, raw):
        values = struct.unpack("<%di" % len(names), raw)
        for name, value in zip(names, values):
            setattr(self, name, value)


class Memory(object):
    """The inferior's memory, as little-endian words."""

    def __init__(self):
        self.inferior = gdb.selected_inferior()

    def read(self, address, size):
        return bytes(self.inferior.read_memory(address, size))

    def u8(self, address):
        return self.read(address, 1)[0]

    def u32(self, address):
        return struct.unpack("<I", self.read(address, 4))[0]

    def u64(self, address):
        return struct.unpack("<Q", self.read(address, 8))[0]

    def f64(self, address):
        return struct.unpack("<d", self.read(address, 8))[0]

    def c_string(self, address, size):
        raw = self.read(address, size)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def table_address():
    """Where `green_debug` is, by its symbol (no debug information needed)."""
    try:
        return int(gdb.parse_and_eval("&green_debug"))
    except gdb.error:
        pass
    try:
        text = gdb.execute("info address green_debug", to_string=True)
    except gdb.error:
        text = ""
    for word in text.replace(".", " ").split():
        if word.startswith("0x"):
            return int(word, 16)
    raise GreenError("no symbol green_debug: not a swift-green program, or a stripped one")


class Table(object):
    """The program's green_debug table, checked against what this script
    was written for."""

    def __init__(self, mem):
        base = table_address()
        header = dict(zip(HEADER_FIELDS, HEADER.unpack(mem.read(base, HEADER.size))))
        if header["magic"] != MAGIC:
            raise GreenError("green_debug at 0x%x does not start with its magic number" % base)
        c_size, swift_size = 4 * len(C_FIELDS), 4 * len(SWIFT_FIELDS)
        if header["version"] != VERSION or header["c_layout_size"] != c_size \
                or header["swift_layout_size"] != swift_size:
            raise GreenError("green_debug is version %d (layouts of %d and %d bytes); this script reads "
                             "version %d (%d and %d): use the script of the program's swift-green"
                             % (header["version"], header["c_layout_size"], header["swift_layout_size"],
                                VERSION, c_size, swift_size))
        self.__dict__.update(header)
        offset = HEADER.size
        self.c = Fields(C_FIELDS, mem.read(base + offset, c_size))
        offset += c_size
        self.swift = Fields(SWIFT_FIELDS, mem.read(base + offset, swift_size))
        offset += swift_size
        offset = (offset + 7) // 8 * 8
        if offset + self.max_hubs * HUB_SLOT.size != self.size:
            raise GreenError("green_debug is %d bytes, not the %d this script expects"
                             % (self.size, offset + self.max_hubs * HUB_SLOT.size))
        raw = mem.read(base + offset, self.max_hubs * HUB_SLOT.size)
        self.hubs = []
        for i in range(self.max_hubs):
            hub, number, thread = HUB_SLOT.unpack_from(raw, i * HUB_SLOT.size)
            if hub:
                self.hubs.append((hub, number, thread))
        self.hubs.sort(key=lambda h: h[1])
        if not self.hubs:
            return
        if self.swift_layout_state == 0:
            raise GreenError("the program's hubs are listed, but not yet where their fields are")
        if self.swift_layout_state != 1:
            raise GreenError("the program could not confirm where its Swift objects' fields are "
                             "(HubDebugInfo.swift): not reading them")


def is_live():
    """Whether the inferior is a running process on this machine (not a core)."""
    inferior = gdb.selected_inferior()
    try:
        kind = inferior.connection.type
    except (AttributeError, gdb.error):
        kind = None
    if kind:
        return kind == "native"
    return inferior.pid > 0 and "core dump" not in gdb.execute("info target", to_string=True)


def swift_string(mem, raw):
    """A Swift `String?` of 16 bytes, or None: small strings are inline;
    large ones (literals and native storage) point at their characters,
    32 bytes into the object. Other forms are not read."""
    count_and_flags, obj = struct.unpack("<QQ", raw)
    if count_and_flags == 0 and obj == 0:
        return None
    discriminator = obj >> 56
    if discriminator & 0x20:  # small
        return raw[:discriminator & 0x0F].decode("utf-8", "replace")
    if count_and_flags & (1 << 60):  # tail-allocated
        count = min(count_and_flags & 0xFFFFFFFFFFFF, 4096)
        return mem.read((obj & 0x0FFFFFFFFFFFFFFF) + 32, count).decode("utf-8", "replace")
    return None


class Context(object):
    """A green_context, the C side of a greenlet."""

    def __init__(self, mem, layout, address):
        c = layout
        self.address = address
        self.sp = mem.u64(address + c.context_sp)
        self.ucontext = mem.u64(address + c.context_ucontext)
        self.stack = mem.u64(address + c.context_stack)
        self.name = mem.c_string(address + c.context_name, c.context_name_size)
        self.kind = mem.u8(address + c.context_kind)
        self.shared = mem.u64(address + c.context_shared)
        self.saved = mem.u64(address + c.context_saved)
        self.saved_size = mem.u32(address + c.context_saved_size)
        self.owner = mem.u64(self.shared + c.shared_owner) if self.shared else 0

    @property
    def on_heap(self):
        """A compact context whose stack is saved on the heap."""
        return bool(self.shared) and self.owner != self.address and bool(self.saved)


class Greenlet(object):
    def __init__(self, mem, table, hub, address, role=None):
        s = table.swift
        self.hub = hub
        self.address = address
        self.role = role
        self.id = mem.u64(address + s.greenlet_id)
        self.parent_id = mem.u64(address + s.greenlet_parent_id)
        state = mem.u8(address + s.greenlet_state)
        self.state = STATES[state] if state < len(STATES) else "state %d" % state
        self.is_compact = mem.u8(address + s.greenlet_is_compact) != 0
        self.parked_since = mem.f64(address + s.greenlet_parked_since)
        waiting = address + s.greenlet_waiting_on
        start = mem.u64(waiting + s.static_string_start)
        count = mem.u64(waiting + s.static_string_count)
        flags = mem.u8(waiting + s.static_string_flags)
        self.waiting_on = None
        if not flags & 1 and start and count < 4096:  # bit 0: a Unicode scalar, not a pointer
            try:
                self.waiting_on = mem.read(start, count).decode("utf-8", "replace")
            except gdb.MemoryError:
                pass
        context = mem.u64(address + s.greenlet_context)
        self.context = Context(mem, table.c, context) if context else None
        # The name: the greenlet's own String where it reads; else the
        # copy the runtime keeps in its context (47 bytes at most).
        custom = None
        if s.greenlet_extras >= 0 and s.extras_custom_name >= 0:
            try:
                extras = mem.u64(address + s.greenlet_extras)
                if extras:
                    custom = swift_string(mem, mem.read(extras + s.extras_custom_name, 16))
            except (gdb.MemoryError, UnicodeError):
                custom = None
        copied = self.context.name if self.context else ""
        if custom and custom.startswith(copied):
            self.name = custom
        else:
            self.name = copied or custom or "Greenlet-%d" % self.id
        self.live_next = mem.u64(address + s.greenlet_live_next)


class Hub(object):
    def __init__(self, mem, table, address, number, thread):
        s = table.swift
        self.address = address
        self.number = number
        self.thread = thread
        self.loop_time = mem.f64(address + s.hub_loop_time)
        self.time_offset = mem.f64(address + s.hub_time_offset)
        self.virtual_clock = mem.u64(address + s.hub_virtual_clock)
        self.current = mem.u64(address + s.hub_current)
        self.greenlets = []
        main = mem.u64(address + s.hub_main_greenlet)
        if main:
            self.greenlets.append(Greenlet(mem, table, self, main, "main"))
        own = mem.u64(address + s.hub_hub_greenlet)
        if own:
            self.greenlets.append(Greenlet(mem, table, self, own, "hub"))
        seen = set()
        cursor = mem.u64(address + s.hub_live_head)
        while cursor and cursor not in seen and len(seen) < MAX_GREENLETS:
            seen.add(cursor)
            g = Greenlet(mem, table, self, cursor)
            self.greenlets.append(g)
            cursor = g.live_next

    def now(self, live):
        """The hub's clock now (live, real time) or at its last loop pass,
        and which it is. The clock is libev's (wall-clock seconds) plus
        what virtual time skipped, or a virtual clock's while one runs."""
        if self.virtual_clock:
            return self.loop_time, "its last loop pass (on virtual time)"
        if live:
            return time.time() + self.time_offset, "now"
        wall = self.loop_time - self.time_offset
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall)) + ".%03d UTC" % int(wall % 1 * 1000)
        return self.loop_time, "its last loop pass, at " + stamp


def read_hubs():
    mem = Memory()
    table = Table(mem)
    hubs = [Hub(mem, table, address, number, thread) for address, number, thread in table.hubs]
    return mem, table, hubs


# -- Threads ---------------------------------------------------------------

def thread_of(hub):
    """The gdb thread a hub runs on, from its pthread_t: the thread
    library's handle, or else the thread pointer (which is the pthread_t
    on glibc)."""
    threads = gdb.selected_inferior().threads()
    for t in threads:
        try:
            if int.from_bytes(t.handle(), "little") == hub.thread:
                return t
        except (gdb.error, AttributeError, TypeError):
            break
    selected = gdb.selected_thread()
    try:
        for t in threads:
            t.switch()
            for register in ("fs_base", "tpidr"):
                try:
                    if int(gdb.newest_frame().read_register(register)) == hub.thread:
                        return t
                except (gdb.error, ValueError):
                    continue
    finally:
        if selected is not None:
            selected.switch()
    return None


def describe_thread(t):
    if t is None:
        return "a thread gdb does not list"
    return "thread %d (LWP %d)" % (t.num, t.ptid[1])


# -- Unwinding a suspended greenlet ----------------------------------------

class StackView(object):
    """A suspended context's stack as it sees it: reads outside [low, high)
    are refused, and those within a compact context's saved image come from
    that image."""

    def __init__(self, mem, low, high, image=None, image_base=0):
        self.mem = mem
        self.low, self.high = low, high
        self.image, self.image_base = image, image_base

    def read(self, address, size):
        if address < self.low or address + size > self.high:
            return None
        if self.image is not None:
            end = self.image_base + len(self.image)
            if self.image_base <= address and address + size <= end:
                at = address - self.image_base
                return self.image[at:at + size]
            if address < end and address + size > self.image_base:
                return None  # straddles the image's edge
        try:
            return self.mem.read(address, size)
        except gdb.MemoryError:
            return None


def frame_start(mem, table, ctx):
    """(pc, fp, view) to unwind a suspended context from, as frames.c's
    green_context_frame_start finds them."""
    c = table.c
    if ctx.stack:
        low = mem.u64(ctx.stack + c.stack_base)
        high = low + mem.u64(ctx.stack + c.stack_size)
    elif ctx.shared:
        run_stack = mem.u64(ctx.shared + c.shared_stack)
        low = mem.u64(run_stack + c.stack_base)
        high = mem.u64(ctx.shared + c.shared_top)
    else:
        low, high = None, None  # a thread's own stack: from sp up
    if ctx.kind == 1:  # ucontext
        if not ctx.ucontext or c.ucontext_pc < 0:
            raise GreenError("its registers cannot be told (ucontext)")
        pc = mem.u64(ctx.ucontext + c.ucontext_pc)
        sp = mem.u64(ctx.ucontext + c.ucontext_sp)
        fp = mem.u64(ctx.ucontext + c.ucontext_fp)
        if low is None:
            low, high = sp, sp + THREAD_STACK_LIMIT
        return pc, fp, StackView(mem, low, high)
    if not ctx.sp or c.switch_fp < 0:
        raise GreenError("it has never been switched out")
    if low is None:
        low, high = ctx.sp, ctx.sp + THREAD_STACK_LIMIT
    image = None
    if ctx.on_heap:
        image = mem.read(ctx.saved, ctx.saved_size)
    view = StackView(mem, low, high, image, ctx.sp)
    frame = view.read(ctx.sp, c.switch_size)
    if frame is None:
        raise GreenError("its saved registers at 0x%x cannot be read" % ctx.sp)
    fp = struct.unpack_from("<Q", frame, c.switch_fp)[0]
    pc = struct.unpack_from("<Q", frame, c.switch_pc)[0]
    if pc == 0 and not any(frame):
        raise GreenError("its stack reads as zeros at 0x%x: a core file written by gcore on Linux 6.13 or "
                         "later lacks stacks with madvise guard pages (run with GREEN_STACK_GUARD=mprotect "
                         "for gcore, or let the kernel write the core)" % ctx.sp)
    return pc, fp, view


def walk(pc, fp, view):
    """Return addresses along the frame-pointer chain, innermost first (as
    frames.c's green_frames_walk)."""
    pcs = [pc]
    while len(pcs) < MAX_FRAMES and fp and fp % 8 == 0:
        record = view.read(fp, 16)
        if record is None:
            break
        caller_fp, ret = struct.unpack("<QQ", record)
        if ret == 0:
            break
        pcs.append(ret)
        if caller_fp <= fp:
            break
        fp = caller_fp
    return pcs


# -- Symbols ---------------------------------------------------------------

_demangled = {}
_demangler = []


def demangler():
    if not _demangler:
        candidates = [os.environ.get("GREEN_SWIFT_DEMANGLE"), shutil.which("swift-demangle"),
                      "/opt/swift/usr/bin/swift-demangle"]
        swift = shutil.which("swift")
        if swift:
            candidates.append(os.path.join(os.path.dirname(os.path.realpath(swift)), "swift-demangle"))
        found = [c for c in candidates if c and os.access(c, os.X_OK)]
        _demangler.append(found[0] if found else None)
    return _demangler[0]


def is_swift_mangled(name):
    return name.startswith(("$s", "$S", "$e", "_$s", "_T0"))


def demangle_all(names):
    """Swift names demangled (simplified), in one run of swift-demangle;
    the names as they are without one."""
    wanted = sorted(set(n for n in names if n and is_swift_mangled(n) and n not in _demangled))
    tool = demangler()
    if wanted and tool:
        try:
            out = subprocess.run([tool, "--simplified"], input="\n".join(wanted) + "\n",
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 universal_newlines=True, timeout=60).stdout.split("\n")
            for name, plain in zip(wanted, out):
                _demangled[name] = plain or name
        except (OSError, subprocess.SubprocessError):
            pass
    return [_demangled.get(n, n) if n else n for n in names]


def minimal_symbol(pc):
    """The ELF symbol around pc, from `info symbol` (no debug information
    needed), or None."""
    try:
        text = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    except gdb.error:
        return None
    if not text or text.startswith("No symbol"):
        return None
    return text.split(" in section ")[0].split(" + ")[0].strip()


class Frame(object):
    def __init__(self, pc, name, where, inlined=False):
        self.pc, self.name, self.where, self.inlined = pc, name, where, inlined


def symbolize(pc):
    """Frames for a return address: the function containing pc - 1, with
    the functions inlined into it there first; file:line where gdb knows
    it, else the library."""
    look = pc - 1
    names = []
    try:
        block = gdb.block_for_pc(look)
    except (RuntimeError, gdb.error):
        block = None
    while block is not None and not (block.is_static or block.is_global):
        if block.function is not None:
            symbol = block.function
            names.append(getattr(symbol, "linkage_name", None) or symbol.name)
        block = block.superblock
    if not names:
        names = [minimal_symbol(look) or "??"]
    where = None
    sal = gdb.find_pc_line(look)
    if sal.symtab is not None and sal.line:
        where = "at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        library = gdb.solib_name(look)
        if library:
            where = "from %s" % library
    frames = [Frame(pc, names[0], where, inlined=len(names) > 1)]
    for i, name in enumerate(names[1:], 1):
        frames.append(Frame(pc, name, None, inlined=i < len(names) - 1))
    return frames


def thread_frames(t):
    """gdb's own backtrace of thread t (the running greenlet's frames)."""
    selected_thread = gdb.selected_thread()
    try:
        selected_frame = gdb.selected_frame()
    except gdb.error:
        selected_frame = None
    frames = []
    try:
        t.switch()
        frame = gdb.newest_frame()
        while frame is not None and len(frames) < MAX_FRAMES:
            pc = frame.pc()
            name = frame.name()
            if name is None:
                name = minimal_symbol(pc if frame.level() == 0 else pc - 1) or "??"
            sal = frame.find_sal()
            where = None
            if sal.symtab is not None and sal.line:
                where = "at %s:%d" % (sal.symtab.filename, sal.line)
            elif gdb.solib_name(pc):
                where = "from %s" % gdb.solib_name(pc)
            frames.append(Frame(pc, name, where, inlined=frame.type() == gdb.INLINE_FRAME))
            try:
                frame = frame.older()
            except gdb.error:
                break
    finally:
        if selected_thread is not None:
            selected_thread.switch()
        if selected_frame is not None:
            try:
                selected_frame.select()
            except gdb.error:
                pass
    return frames


def print_frames(frames):
    names = demangle_all([f.name for f in frames])
    for i, (f, name) in enumerate(zip(frames, names)):
        line = "#%-3d 0x%016x in %s" % (i, f.pc, name)
        if f.inlined:
            line += " [inlined]"
        if f.where:
            line += " " + f.where
        gdb.write(line + "\n")


# -- The commands ------------------------------------------------------------

def state_text(g, now, threads):
    if g.state == "parked":
        text = "parked"
        if g.waiting_on:
            text += " on " + g.waiting_on
        if g.parked_since:
            text += " for %.3f s" % max(0.0, now - g.parked_since)
        return text
    if g.state == "running" and g.hub.current == g.address:
        return "running on " + describe_thread(threads.get(g.hub.number))
    if g.state == "running":
        # The hub's own greenlet stays "running" while it lets others run.
        current = [o for o in g.hub.greenlets if o.address == g.hub.current]
        return "switched to greenlet %d" % current[0].id if current else "suspended"
    if g.state == "pending":
        return "not started"
    return g.state


def stack_text(g):
    if not g.is_compact:
        return ""
    ctx = g.context
    if ctx is None or not ctx.shared:
        return "compact"
    if ctx.owner == ctx.address:
        return "compact, stack on the run stack"
    if ctx.saved:
        return "compact, stack saved on the heap (%d bytes)" % ctx.saved_size
    return "compact"


class GreenList(gdb.Command):
    """List every hub's greenlets: id, name, state, what a parked greenlet
waits on and for how long, and whether it is compact.

Usage: green-list"""

    def __init__(self):
        super(GreenList, self).__init__("green-list", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        try:
            mem, table, hubs = read_hubs()
        except GreenError as e:
            raise gdb.GdbError("green-list: %s" % e)
        if not hubs:
            gdb.write("swift-green: no hubs (no thread has used a green API yet, or all have ended)\n")
            return
        live = is_live()
        threads = dict((h.number, thread_of(h)) for h in hubs)
        for hub in hubs:
            now, basis = hub.now(live)
            gdb.write("hub %d on %s: %d greenlets (waits up to %s)\n"
                      % (hub.number, describe_thread(threads[hub.number]), len(hub.greenlets), basis))
            width = max(len(g.name) for g in hub.greenlets)
            for g in hub.greenlets:
                line = "  id %-6d %-*s  %s" % (g.id, width, g.name, state_text(g, now, threads))
                stack = stack_text(g)
                if stack:
                    line += "; " + stack
                gdb.write(line + "\n")
        if table.hubs_dropped:
            gdb.write("(%d more hubs were made while the table was full: not listed)\n" % table.hubs_dropped)


class GreenBacktrace(gdb.Command):
    """Print the backtrace of greenlet ID (its id in green-list).

Usage: green-bt ID

A suspended greenlet is unwound from the registers its switch saved, along
frame pointers (a compact one from its saved image when its stack is on the
heap); the running greenlet's frames are its hub thread's."""

    def __init__(self):
        super(GreenBacktrace, self).__init__("green-bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if len(words) != 1:
            raise gdb.GdbError("usage: green-bt ID")
        try:
            wanted = int(words[0], 0)
        except ValueError:
            raise gdb.GdbError("green-bt: not a greenlet id: %s" % words[0])
        try:
            mem, table, hubs = read_hubs()
        except GreenError as e:
            raise gdb.GdbError("green-bt: %s" % e)
        found = [g for h in hubs for g in h.greenlets if g.id == wanted]
        if not found:
            raise gdb.GdbError("green-bt: no greenlet %d (green-list lists them)" % wanted)
        live = is_live()
        for g in found:
            self.backtrace(mem, table, g, live)

    def backtrace(self, mem, table, g, live):
        now, _ = g.hub.now(live)
        t = thread_of(g.hub)
        title = "greenlet %d \"%s\" (hub %d): %s" % (g.id, g.name, g.hub.number,
                                                     state_text(g, now, {g.hub.number: t}))
        stack = stack_text(g)
        if stack:
            title += "; " + stack
        gdb.write(title + "\n")
        if g.state == "running" and g.hub.current == g.address:
            if t is None:
                gdb.write("its frames are its thread's, which gdb does not list\n")
                return
            gdb.write("its frames are those of %s:\n" % describe_thread(t))
            print_frames(thread_frames(t))
            return
        if g.context is None or g.state in ("pending", "finished"):
            gdb.write("no frames: it has not started, or has finished\n")
            return
        try:
            pc, fp, view = frame_start(mem, table, g.context)
        except GreenError as e:
            gdb.write("no frames: %s\n" % e)
            return
        if g.context.on_heap:
            gdb.write("read from its stack's image on the heap at 0x%x (%d bytes for 0x%x-0x%x)\n"
                      % (g.context.saved, g.context.saved_size, g.context.sp,
                         g.context.sp + g.context.saved_size))
        frames = []
        for pc in walk(pc, fp, view):
            frames.extend(symbolize(pc))
        print_frames(frames)


GreenList()
GreenBacktrace()
