/* A system clock shifted by SHIFT_CLOCK_S seconds, for one process tree (LD_PRELOAD).
 *
 * Proves the test suite does not depend on today's date: tools/test-shifted-clock runs the
 * README's test command with the wall clock a year ahead and a year behind. Only the wall clock
 * moves (CLOCK_REALTIME, gettimeofday, time): monotonic clocks, sleeps and timed waits are left
 * alone, as they are when a real device's clock is wrong. (Debian's libfaketime 0.9.10 cannot do
 * this for Python 3.11: faking the monotonic clock hangs every timed lock wait in sem_clockwait,
 * and not faking it makes time.sleep fail with EINVAL in its clock_nanosleep wrapper.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long shift_s(void)
{
    static int ready;
    static long long shift;
    if (!ready) {
        const char *text = getenv("SHIFT_CLOCK_S");
        shift = text ? atoll(text) : 0;
        ready = 1;
    }
    return shift;
}

int clock_gettime(clockid_t id, struct timespec *tp)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(id, tp);
    if (result == 0 && tp && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        tp->tv_sec += shift_s();
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    static int (*real)(struct timeval *restrict, void *restrict);
    if (!real)
        real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
    int result = real(tv, tz);
    if (result == 0 && tv)
        tv->tv_sec += shift_s();
    return result;
}

time_t time(time_t *out)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out)
        *out = now.tv_sec;
    return now.tv_sec;
}
