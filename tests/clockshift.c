/* clockshift: moves the wall clock of a process (and the processes it starts) by
 * CLOCKSHIFT_SECONDS seconds; monotonic clocks stay real, as on a host whose clock is
 * simply wrong. .ci/run preloads it for the clock-shifted run of the test suite.
 *
 * Why not Debian's libfaketime (0.9.10), tried first: with monotonic clocks faked too,
 * Python's timed lock waits (sem_clockwait on CLOCK_MONOTONIC, which it does not intercept)
 * wait the whole shift; with FAKETIME_DONT_FAKE_MONOTONIC=1 its clock_nanosleep wrapper
 * still moves monotonic deadlines, and every time.sleep() fails with EINVAL.
 *
 * Build: gcc -shared -fPIC -O2 -o clockshift.so clockshift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long shift_seconds(void) {
    static long shift = -1;
    if (shift == -1) {
        const char *text = getenv("CLOCKSHIFT_SECONDS");
        shift = text ? strtol(text, NULL, 10) : 0;
    }
    return shift;
}

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI;
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, now);
    if (result == 0 && is_wall_clock(clock)) now->tv_sec += shift_seconds();
    return result;
}

int gettimeofday(struct timeval *restrict now, void *restrict zone) {
    static int (*real)(struct timeval *restrict, void *restrict);
    if (!real) real = (int (*)(struct timeval *restrict, void *restrict))dlsym(
        RTLD_NEXT, "gettimeofday");
    int result = real(now, zone);
    if (result == 0) now->tv_sec += shift_seconds();
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return (time_t)-1;
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}

int timespec_get(struct timespec *now, int base) {
    if (base != TIME_UTC || clock_gettime(CLOCK_REALTIME, now) != 0) return 0;
    return base;
}
