// The blocked-hub monitor: see green_context.h.
#define _GNU_SOURCE
#include "green_monitor.h"
#include "green_switch.h"

#include <errno.h>
#include <execinfo.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static green_hub_monitor *registry = NULL;
static int watchdog_started = 0;
static _Atomic double threshold_seconds = -1;   // -1: not read from the environment yet
static _Atomic uint64_t report_count = 0;
static _Atomic int print_reports = 1;
static _Atomic(green_monitor_sink_fn) report_sink = NULL;
static _Atomic(green_monitor_annotate_fn) report_annotator = NULL;
static char last_report[4096];
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local green_hub_monitor *thread_monitor = NULL;

static void ensure_watchdog_locked(void);

// The signal that asks a blocked thread for its backtrace: SIGURG, which
// nothing else here uses and whose default action is to ignore it.
#define GREEN_MONITOR_SIGNAL SIGURG

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

double green_monitor_threshold(void) {
    double t = atomic_load(&threshold_seconds);
    if (t < 0) {
        const char *env = getenv("GREEN_MONITOR_MS");
        t = env ? atof(env) / 1000.0 : 0.1;
        if (t < 0) t = 0;
        atomic_store(&threshold_seconds, t);
    }
    return t;
}

void green_monitor_set_threshold(double seconds) {
    atomic_store(&threshold_seconds, seconds < 0 ? 0 : seconds);
    pthread_mutex_lock(&registry_lock);
    if (registry) ensure_watchdog_locked();
    pthread_mutex_unlock(&registry_lock);
}
uint64_t green_monitor_report_count(void) { return atomic_load(&report_count); }
void green_monitor_set_print(int print) { atomic_store(&print_reports, print); }
void green_monitor_set_sink(green_monitor_sink_fn sink) { atomic_store(&report_sink, sink); }
void green_monitor_set_annotator(green_monitor_annotate_fn annotate) { atomic_store(&report_annotator, annotate); }

void green_monitor_set_tag(green_hub_monitor *m, uint64_t tag) {
    pthread_mutex_lock(&registry_lock);
    m->tag = tag;
    pthread_mutex_unlock(&registry_lock);
}

// A report made under the registry lock, emitted once the lock is let go
// (the sink runs Swift code, which may take locks of its own): it holds
// copies of everything, as the hub may be gone by then.
typedef struct pending_report {
    char text[4096];
    char name[sizeof(((green_context *)0)->name) + 24];
    uint64_t hub_tag;
    double held;
    double threshold;
    long syscall_number;
    char **symbols;   // from backtrace_symbols (freed after emission)
    int symbol_count;
    uintptr_t addresses[48];
    int address_count;
} pending_report;

void green_monitor_last_report(char *buffer, size_t size) {
    if (size == 0) return;
    pthread_mutex_lock(&report_lock);
    strncpy(buffer, last_report, size - 1);
    buffer[size - 1] = 0;
    pthread_mutex_unlock(&report_lock);
}

// On the blocked thread: its backtrace, into its monitor. backtrace() was
// called once on the watchdog before any signal, so libgcc is loaded and
// the call does not allocate here.
static void backtrace_handler(int sig) {
    (void)sig;
    int saved_errno = errno;   // the interrupted code may be about to read it
    green_hub_monitor *m = thread_monitor;
    if (m) {
        int n = backtrace((void **)m->backtrace, 48);
        __atomic_store_n(&m->backtrace_count, n, __ATOMIC_RELAXED);
        __atomic_store_n(&m->backtrace_ready, 1, __ATOMIC_RELEASE);
    }
    errno = saved_errno;
}

// Names of the system calls a blocked greenlet is most often found in.
static const char *syscall_name(long n) {
#if defined(__x86_64__)
    switch (n) {
    case 0: return "read"; case 1: return "write"; case 7: return "poll"; case 23: return "select";
    case 35: return "nanosleep"; case 42: return "connect"; case 43: return "accept"; case 44: return "sendto";
    case 45: return "recvfrom"; case 61: return "wait4"; case 202: return "futex"; case 230: return "clock_nanosleep";
    case 232: return "epoll_wait"; case 271: return "ppoll"; case 288: return "accept4";
    }
#elif defined(__aarch64__)
    switch (n) {
    case 63: return "read"; case 64: return "write"; case 73: return "ppoll"; case 98: return "futex";
    case 101: return "nanosleep"; case 115: return "clock_nanosleep"; case 203: return "connect";
    case 202: return "accept"; case 206: return "sendto"; case 207: return "recvfrom"; case 242: return "accept4";
    case 260: return "wait4";
    }
#endif
    return "";
}

// Describes the incident on `m`'s hub into `out`; returns 0 if the hub
// moved on meanwhile (no incident). The registry lock held.
static int report(green_hub_monitor *m, double held, pending_report *out) {
    // The greenlet's name, read while the hub stays where it was.
    char *name = out->name;
    snprintf(name, sizeof out->name, "(the main greenlet)");
    uint64_t before = __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE);
    const green_context *ctx = __atomic_load_n(&m->current, __ATOMIC_RELAXED);
    if (ctx) {
        // Word by word, as green_context_set_identity writes it. A context
        // being renamed or reused meanwhile shows as a changed epoch below.
        char copy[sizeof ctx->name];
        const uint64_t *slots = (const uint64_t *)(const void *)ctx->name;
        for (size_t w = 0; w < sizeof copy / sizeof(uint64_t); w++) {
            uint64_t word = __atomic_load_n(&slots[w], __ATOMIC_RELAXED);
            memcpy(copy + w * sizeof word, &word, sizeof word);
        }
        copy[sizeof copy - 1] = 0;
        uint64_t id = __atomic_load_n(&ctx->id, __ATOMIC_RELAXED);
        // Unnamed greenlets are "Greenlet-<id>", as Swift names them.
        if (copy[0]) {
            memcpy(name, copy, sizeof copy);
        } else {
            snprintf(name, sizeof out->name, "Greenlet-%llu", (unsigned long long)id);
        }
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&m->epoch, __ATOMIC_RELAXED) != before) return 0;   // it moved on meanwhile: no incident
    // Running on the CPU, or waiting in the kernel? A thread in a system
    // call is not signalled: the signal would cut its call short (EINTR).
    char path[64], state = '?';
    long syscall_number = -1;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", m->tid);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        char *close_paren = strrchr(buf, ')');
        if (close_paren && close_paren[1] == ' ') state = close_paren[2];
    }
    if (state != 'R') {
        snprintf(path, sizeof path, "/proc/self/task/%d/syscall", m->tid);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &syscall_number) != 1) syscall_number = -1;
            fclose(f);
        }
    }
    // Its backtrace, taken on its own thread (a running thread only).
    __atomic_store_n(&m->backtrace_ready, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->backtrace_count, 0, __ATOMIC_RELAXED);
    int have_backtrace = 0;
    if (state == 'R' && pthread_kill((pthread_t)m->thread, GREEN_MONITOR_SIGNAL) == 0) {
        for (int i = 0; i < 200 && !__atomic_load_n(&m->backtrace_ready, __ATOMIC_ACQUIRE); i++) usleep(500);
        have_backtrace = __atomic_load_n(&m->backtrace_ready, __ATOMIC_ACQUIRE);
    }
    char *text = out->text;
    size_t size = sizeof out->text;
    out->hub_tag = m->tag;
    out->held = held;
    out->threshold = green_monitor_threshold();
    out->syscall_number = state != 'R' ? syscall_number : -1;
    out->symbols = NULL;
    out->symbol_count = 0;
    out->address_count = 0;
    int len = snprintf(text, size,
                       "swift-green: greenlet %s has held its hub for %.0f ms without switching "
                       "(monitor threshold %.0f ms): a busy loop, or a call that blocks the thread\n",
                       name, held * 1000, out->threshold * 1000);
    if (state != 'R' && len > 0 && len < (int)size) {
        len += snprintf(text + len, size - len,
                        "  the thread waits in the kernel, in system call %ld%s%s%s (no backtrace taken: a signal would interrupt it)\n",
                        syscall_number, syscall_name(syscall_number)[0] ? " (" : "", syscall_name(syscall_number),
                        syscall_name(syscall_number)[0] ? ")" : "");
    }
    if (have_backtrace && len > 0 && len < (int)size) {
        int count = __atomic_load_n(&m->backtrace_count, __ATOMIC_RELAXED);
        char **symbols = backtrace_symbols((void *const *)m->backtrace, count);
        for (int i = 0; symbols && i < count && len < (int)size - 1; i++) {
            int n = snprintf(text + len, size - len, "  %s\n", symbols[i]);
            if (n < 0) break;
            len += n;
        }
        out->symbols = symbols;
        out->symbol_count = symbols ? count : 0;
        for (int i = 0; i < count && i < 48; i++) out->addresses[i] = (uintptr_t)m->backtrace[i];
        out->address_count = count < 48 ? count : 48;
    }
    __atomic_store_n(&m->incidents, m->incidents + 1, __ATOMIC_RELAXED);
    return 1;
}

// Keeps, counts and emits a report: to the sink if one takes it, else to
// stderr. The registry lock not held.
static void emit(pending_report *r) {
    green_monitor_incident incident = {
        .text = r->text, .greenlet = r->name, .hub_tag = r->hub_tag,
        .held_seconds = r->held, .threshold_seconds = r->threshold,
        .syscall_number = r->syscall_number, .syscall_name = syscall_name(r->syscall_number),
        .backtrace = r->symbols, .backtrace_count = r->symbol_count,
        .addresses = r->addresses, .address_count = r->address_count,
    };
    green_monitor_annotate_fn annotate = atomic_load(&report_annotator);
    static char annotated[sizeof r->text];   // only the watchdog thread emits
    if (annotate && annotate(&incident, annotated, sizeof annotated)) {
        annotated[sizeof annotated - 1] = 0;
        memcpy(r->text, annotated, sizeof r->text);
    }
    pthread_mutex_lock(&report_lock);
    memcpy(last_report, r->text, sizeof last_report);
    last_report[sizeof last_report - 1] = 0;
    pthread_mutex_unlock(&report_lock);
    if (atomic_load(&print_reports)) {
        green_monitor_sink_fn sink = atomic_load(&report_sink);
        if (!sink || !sink(&incident)) {
            // The system call itself (patch mode interposes write()).
            long ignored = syscall(SYS_write, 2, r->text, strlen(r->text));
            (void)ignored;
        }
    }
    free(r->symbols);
    r->symbols = NULL;
    // Counted once emitted: whoever waits for the count sees the report
    // delivered.
    atomic_fetch_add(&report_count, 1);
}

// Reports one watchdog pass may collect; more blocked hubs wait for the
// next pass.
enum { REPORTS_PER_PASS = 4 };

static void *watchdog(void *arg) {
    (void)arg;
    void *warm[4];
    backtrace(warm, 4);   // loads the unwinder now, not in a signal handler
    static pending_report reports[REPORTS_PER_PASS];   // only this thread uses them
    for (;;) {
        double threshold = green_monitor_threshold();
        double interval = threshold > 0 ? threshold / 4 : 0.1;
        if (interval < 0.005) interval = 0.005;
        struct timespec pause = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
        nanosleep(&pause, NULL);
        if (threshold <= 0) continue;
        double now = now_seconds();
        int count = 0;
        pthread_mutex_lock(&registry_lock);
        for (green_hub_monitor *m = registry; m; m = m->next) {
            uint64_t epoch = __atomic_load_n(&m->epoch, __ATOMIC_RELAXED);
            if (__atomic_load_n(&m->idle, __ATOMIC_RELAXED) || __atomic_load_n(&m->others, __ATOMIC_RELAXED) == 0
                || epoch != m->seen_epoch) {
                m->seen_epoch = epoch;
                m->seen_since = now;
                m->reported = 0;
            } else if (!m->reported && now - m->seen_since >= threshold && count < REPORTS_PER_PASS) {
                m->reported = 1;
                if (report(m, now - m->seen_since, &reports[count])) count++;
            }
        }
        pthread_mutex_unlock(&registry_lock);
        for (int i = 0; i < count; i++) emit(&reports[i]);
    }
    return NULL;
}

// Starts the watchdog once the monitor is on; the registry lock held.
static void ensure_watchdog_locked(void) {
    if (!watchdog_started && green_monitor_threshold() > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = backtrace_handler;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(GREEN_MONITOR_SIGNAL, &sa, NULL);
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 256 * 1024);
        // The watchdog takes no signal meant for the program.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_t t;
        if (pthread_create(&t, &attributes, watchdog, NULL) == 0) watchdog_started = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attributes);
    }
}

void green_monitor_register(green_hub_monitor *m) {
    memset(m, 0, sizeof *m);
    m->thread = (void *)pthread_self();
    m->tid = (int)syscall(SYS_gettid);
    m->seen_since = now_seconds();
    thread_monitor = m;
    pthread_mutex_lock(&registry_lock);
    m->next = registry;
    registry = m;
    ensure_watchdog_locked();
    pthread_mutex_unlock(&registry_lock);
}

void green_monitor_unregister(green_hub_monitor *m) {
    pthread_mutex_lock(&registry_lock);
    for (green_hub_monitor **p = &registry; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (thread_monitor == m) thread_monitor = NULL;
}
