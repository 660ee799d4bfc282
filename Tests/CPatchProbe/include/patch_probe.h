// C code that blocks, for the patch-mode tests: plain calls to libc's
// sleep family, compiled into the test program.
#ifndef PATCH_PROBE_H
#define PATCH_PROBE_H
unsigned int patch_probe_sleep(unsigned int seconds);
int patch_probe_usleep(unsigned int microseconds);
int patch_probe_nanosleep_ms(long milliseconds);
#endif
