#include "patch_internal.h"

// Patch mode: getaddrinfo.

// The job a pool thread runs is on the heap, arguments copied: the caller's
// memory may be its greenlet's stack, which is not there while a compact
// greenlet is parked (see compact.c), so the pool thread touches only the
// job, and the caller reads the result once it runs again.
struct resolve_job {
    char *node, *service;
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *result;
    int rc;
};

static void resolve_work(void *arg) {
    struct resolve_job *j = arg;
    REAL(getaddrinfo);
    j->rc = getaddrinfo_real(j->node, j->service, j->has_hints ? &j->hints : NULL, &j->result);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **result) {
    const green_patch_hooks *h = gp_cooperating();
    if (h) {
        // The lookup blocks its thread: a pool thread, not the hub's.
        struct resolve_job *j = calloc(1, sizeof *j);
        if (!j || (node && !(j->node = strdup(node))) || (service && !(j->service = strdup(service)))) {
            if (j) {
                free(j->node);
                free(j);
            }
            return EAI_MEMORY;
        }
        if (hints) {
            // Only the fields getaddrinfo reads from hints; the rest zero.
            j->hints.ai_flags = hints->ai_flags;
            j->hints.ai_family = hints->ai_family;
            j->hints.ai_socktype = hints->ai_socktype;
            j->hints.ai_protocol = hints->ai_protocol;
            j->has_hints = 1;
        }
        j->rc = EAI_SYSTEM;
        h->run_elsewhere(resolve_work, j);
        int rc = j->rc;
        if (rc == 0) *result = j->result;
        free(j->node);
        free(j->service);
        free(j);
        return rc;
    }
    REAL(getaddrinfo);
    return getaddrinfo_real(node, service, hints, result);
}
