// swift-green: the blocked-hub monitor (monitor.c).
//
// A watchdog thread notices a hub whose running greenlet has not switched
// for longer than a threshold (a greenlet spinning, or blocking in a call
// that does not cooperate) and reports it once per incident, naming the
// greenlet, with a backtrace taken on the blocked thread (a signal).
// Each hub owns a green_hub_monitor; the hub thread writes it on every
// switch (one writer) and the watchdog only reads. Both sides use relaxed
// atomic loads and stores, which on x86_64 and aarch64 are the plain moves
// they would be anyway, and make the sharing well defined (and clean under
// ThreadSanitizer). The epoch tells the watchdog whether what it read is
// still the same incident, as in a sequence lock.
#ifndef SWIFT_GREEN_MONITOR_H
#define SWIFT_GREEN_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "green_context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct green_hub_monitor {
    /// Bumped by the hub on every switch and every loop pass.
    uint64_t epoch;
    /// 1 while the hub waits for events (idle, not blocked).
    int idle;
    /// Spawned greenlets alive on the hub: a thread with none (only its
    /// main greenlet) stalls nobody when it blocks, and is not reported.
    int others;
    /// The context running on the hub.
    const green_context *current;
    // The watchdog's own view, and the registry link.
    uint64_t seen_epoch;
    double seen_since;
    int reported;
    void *thread;                       // pthread_t of the hub's thread
    int tid;                            // its kernel thread id
    struct green_hub_monitor *next;
    // Filled by the blocked thread's signal handler.
    void *backtrace[48];
    int backtrace_count;
    int backtrace_ready;
    /// Incidents reported for this hub (written by the watchdog, read by
    /// the hub's figures).
    uint64_t incidents;
    /// The hub's number, named in reports (green_monitor_set_tag).
    uint64_t tag;
} green_hub_monitor;

/// Registers `m` for the calling thread's hub (starts the watchdog on
/// first use unless the monitor is off).
void green_monitor_register(green_hub_monitor *m);
void green_monitor_unregister(green_hub_monitor *m);

static inline void green_monitor_switched(green_hub_monitor *m, const green_context *to) {
    __atomic_store_n(&m->current, to, __ATOMIC_RELAXED);
    __atomic_store_n(&m->epoch, __atomic_load_n(&m->epoch, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
static inline void green_monitor_set_idle(green_hub_monitor *m, int idle) {
    __atomic_store_n(&m->idle, idle, __ATOMIC_RELAXED);
    __atomic_store_n(&m->epoch, __atomic_load_n(&m->epoch, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
static inline void green_monitor_set_others(green_hub_monitor *m, int others) {
    __atomic_store_n(&m->others, others, __ATOMIC_RELAXED);
}

/// Seconds a greenlet may hold its hub before a report; 0 turns the
/// monitor off. Default 0.1, or GREEN_MONITOR_MS (0: off) from the
/// environment.
void green_monitor_set_threshold(double seconds);
double green_monitor_threshold(void);
/// Reports made so far, and the last one's text (copied into `buffer`).
uint64_t green_monitor_report_count(void);
void green_monitor_last_report(char *buffer, size_t size);
/// Whether reports are emitted (default 1): written to standard error,
/// or handed to the sink. Off, they are still counted and kept.
void green_monitor_set_print(int print);
/// Sets the number reports name the hub by (the registry's).
void green_monitor_set_tag(green_hub_monitor *m, uint64_t tag);
/// Incidents reported for `m`'s hub so far. Any thread.
static inline uint64_t green_monitor_incidents(const green_hub_monitor *m) {
    return __atomic_load_n(&m->incidents, __ATOMIC_RELAXED);
}

/// One blocked-hub report, as handed to the sink.
typedef struct green_monitor_incident {
    /// The whole report, exactly as written to stderr by default.
    const char *text;
    /// The greenlet that held the hub, and the hub's tag.
    const char *greenlet;
    uint64_t hub_tag;
    double held_seconds;
    double threshold_seconds;
    /// The system call the thread waits in (-1: it was running on the CPU,
    /// or unknown), and its name ("" if unknown).
    long syscall_number;
    const char *syscall_name;
    /// The blocked thread's backtrace, one symbol line each (none if the
    /// thread waited in the kernel).
    char *const *backtrace;
    int backtrace_count;
    /// The same backtrace's raw addresses, innermost first, beginning with
    /// the signal handler's frame and the kernel's signal trampoline.
    const uintptr_t *addresses;
    int address_count;
} green_monitor_incident;

/// Rewrites a report's text before it is kept (`green_monitor_last_report`)
/// and emitted: the runtime trims the backtrace to the frames that matter
/// and names the user's code there. Writes at most `size` bytes, NUL
/// included, into `out` and returns nonzero, or returns 0 to keep the text.
/// Called on the watchdog thread, no lock of the monitor held.
typedef int (*green_monitor_annotate_fn)(const green_monitor_incident *incident, char *out, size_t size);
/// Sets (or, with NULL, removes) the annotator. Any thread.
void green_monitor_set_annotator(green_monitor_annotate_fn annotate);

/// Receives each report on the watchdog thread, no lock of the monitor
/// held; returns nonzero if it took the report, 0 to have it written to
/// stderr as by default. Must not block for long: the watchdog watches
/// every hub.
typedef int (*green_monitor_sink_fn)(const green_monitor_incident *incident);
/// Sets (or, with NULL, removes) the sink. Any thread.
void green_monitor_set_sink(green_monitor_sink_fn sink);

#ifdef __cplusplus
}
#endif

#endif
