// A thin C face over libev for Swift.
//
// libev's watcher set-up (`ev_init`, `ev_io_init`, `ev_timer_set`, ...) are
// C macros, which Swift cannot import. Each is wrapped here in a
// `static inline` function, which Swift imports and the optimiser inlines.
// Nothing else lives here: the hub owns the policy.
#ifndef SWIFT_GREEN_CLIBEV_SHIM_H
#define SWIFT_GREEN_CLIBEV_SHIM_H

#include <ev.h>

typedef void (*green_ev_io_cb)(struct ev_loop *, ev_io *, int);
typedef void (*green_ev_timer_cb)(struct ev_loop *, ev_timer *, int);
typedef void (*green_ev_async_cb)(struct ev_loop *, ev_async *, int);
typedef void (*green_ev_prepare_cb)(struct ev_loop *, ev_prepare *, int);
typedef void (*green_ev_check_cb)(struct ev_loop *, ev_check *, int);
typedef void (*green_ev_signal_cb)(struct ev_loop *, ev_signal *, int);

static inline void green_ev_io_init(ev_io *w, green_ev_io_cb cb, int fd, int events) {
    ev_io_init(w, cb, fd, events);
}
static inline void green_ev_io_set(ev_io *w, int fd, int events) {
    ev_io_set(w, fd, events);
}
static inline void green_ev_timer_init(ev_timer *w, green_ev_timer_cb cb, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_init(w, cb, after, repeat);
}
static inline void green_ev_timer_set(ev_timer *w, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_set(w, after, repeat);
}
static inline void green_ev_async_init(ev_async *w, green_ev_async_cb cb) {
    ev_async_init(w, cb);
}
static inline void green_ev_prepare_init(ev_prepare *w, green_ev_prepare_cb cb) {
    ev_prepare_init(w, cb);
}
static inline void green_ev_check_init(ev_check *w, green_ev_check_cb cb) {
    ev_check_init(w, cb);
}
static inline void green_ev_signal_init(ev_signal *w, green_ev_signal_cb cb, int signum) {
    ev_signal_init(w, cb, signum);
}
static inline int green_ev_is_active(void *w) {
    return ev_is_active((ev_watcher *)w);
}
static inline int green_ev_is_pending(void *w) {
    return ev_is_pending((ev_watcher *)w);
}

#endif
