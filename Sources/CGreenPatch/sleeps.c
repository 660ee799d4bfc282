#include "patch_internal.h"

// Patch mode: sleeps.

unsigned int sleep(unsigned int seconds) {
    const green_patch_hooks *h = gp_cooperating();
    if (h) {
        double start = now_s();
        if (h->sleep_for((double)seconds) == 0) return 0;
        // Interrupted (killed, or a timeout expired), as a signal would:
        // the seconds left, rounded as glibc rounds them.
        struct timespec request = { (time_t)seconds, 0 };
        struct timespec left = timespec_left(&request, now_s() - start);
        return (unsigned int)left.tv_sec + (left.tv_nsec >= 500000000L);
    }
    REAL(sleep);
    return sleep_real(seconds);
}

int usleep(useconds_t microseconds) {
    const green_patch_hooks *h = gp_cooperating();
    if (h) {
        if (h->sleep_for((double)microseconds / 1e6) == 0) return 0;
        errno = EINTR;
        return -1;
    }
    REAL(usleep);
    return usleep_real(microseconds);
}

int nanosleep(const struct timespec *request, struct timespec *remaining) {
    REAL(nanosleep);
    // Invalid requests get libc's answer (EINVAL, EFAULT) at once.
    if (!request || !timespec_valid(request)) return nanosleep_real(request, remaining);
    const green_patch_hooks *h = gp_cooperating();
    if (!h) return nanosleep_real(request, remaining);
    double start = now_s();
    if (h->sleep_for(timespec_s(request)) == 0) return 0;
    if (remaining) *remaining = timespec_left(request, now_s() - start);
    errno = EINTR;
    return -1;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remaining) {
    REAL(clock_nanosleep);
    // Other clocks (CPU-time clocks, clocks of other processes), and
    // invalid requests, get libc's answer.
    int known = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME || clock == CLOCK_TAI;
    if (!known || !request || !timespec_valid(request)) return clock_nanosleep_real(clock, flags, request, remaining);
    const green_patch_hooks *h = gp_cooperating();
    if (!h) return clock_nanosleep_real(clock, flags, request, remaining);
    double seconds = timespec_s(request);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        clock_gettime(clock, &now);
        seconds -= timespec_s(&now);
        if (seconds <= 0) return 0;
    }
    double start = now_s();
    if (h->sleep_for(seconds) == 0) return 0;
    if (!(flags & TIMER_ABSTIME) && remaining) *remaining = timespec_left(request, now_s() - start);
    return EINTR;   // clock_nanosleep returns the error, errno stays
}
