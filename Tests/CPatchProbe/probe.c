#include "patch_probe.h"
#include <time.h>
#include <unistd.h>

unsigned int patch_probe_sleep(unsigned int seconds) { return sleep(seconds); }
int patch_probe_usleep(unsigned int microseconds) { return usleep(microseconds); }
int patch_probe_nanosleep_ms(long milliseconds) {
    struct timespec t = { milliseconds / 1000, (milliseconds % 1000) * 1000000 };
    return nanosleep(&t, NULL);
}
