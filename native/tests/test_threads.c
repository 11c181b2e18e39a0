/* 8 host threads call every export at once (attention, Nadaraya-Watson predict and cross-validation): valid random calls
 * must match the reference, and each thread's failing calls must leave that thread's own message in
 * fka_last_error_message() while the others keep calling. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fka_test.h"
#include "fka_test_nw.h"

#define THREADS 8
#define ROUNDS 120

typedef struct {
    int index;
    int passes, failures;
    char first_failure[600];
} worker_t;

static void fail(worker_t *w, const char *text)
{
    if (w->failures++ == 0) snprintf(w->first_failure, sizeof w->first_failure, "%s", text);
}

static void *work(void *arg)
{
    worker_t *w = arg;
    rng_t rng = { UINT64_C(0xABCDEF0123) * (uint64_t)(w->index + 1) };
    /* Each thread breaks a different size so that the messages differ between threads. */
    static const char *names[THREADS] = { "query_count", "key_count", "head_dim", "value_dim",
                                          "query_count", "key_count", "head_dim", "value_dim" };
    for (int round = 0; round < ROUNDS; round++) {
        int precision = (round + w->index) % 2 ? 32 : 64;
        int variant = (round + w->index) % VARIANT_COUNT;
        case_t c = random_case(&rng, precision, variant);
        char why[512];
        if (run_case(&c, &rng, why, sizeof why) != 0) {
            char text[600];
            snprintf(text, sizeof text, "thread %d round %d: %s", w->index, round, why);
            fail(w, text);
        } else w->passes++;

        /* A Nadaraya-Watson predict or cross-validation call (selection keeps a process-wide counter: not here). */
        nw_case_t nw = nw_random_case(&rng, precision, (round + w->index) % NW_SELECT);
        if (nw_run_case(&nw, &rng, why, sizeof why) != 0) {
            char text[600];
            snprintf(text, sizeof text, "thread %d round %d: %s: %s", w->index, round, nw_kind_name(nw.kind), why);
            fail(w, text);
        } else w->passes++;

        /* A failing call, then a check that this thread's message is about its own argument. */
        int64_t bad = -1 - w->index;
        int64_t m = w->index % 4 == 0 ? bad : 1, n = w->index % 4 == 1 ? bad : 1;
        int64_t d = w->index % 4 == 2 ? bad : 1, dv = w->index % 4 == 3 ? bad : 1;
        float x[1] = { 0 }, o[1];
        fka_status status = fka_attention_forward_f32(m, n, d, dv, x, 0, x, 0, x, 0, o, 0, NULL, NULL);
        char expected[64];
        snprintf(expected, sizeof expected, "%s must be at least", names[w->index]);
        const char *message = fka_last_error_message();
        char got[64];
        snprintf(got, sizeof got, "got %lld.", (long long)bad);
        if (status != FKA_ERR_SHAPE || strstr(message, expected) == NULL || strstr(message, got) == NULL) {
            char text[600];
            snprintf(text, sizeof text, "thread %d: status %d, message \"%s\" (want \"%s\" and \"%s\")", w->index, status,
                message, expected, got);
            fail(w, text);
        } else w->passes++;
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    memset(workers, 0, sizeof workers);
    for (int t = 0; t < THREADS; t++) {
        workers[t].index = t;
        if (pthread_create(&threads[t], NULL, work, &workers[t]) != 0) {
            printf("FAIL pthread_create\n");
            return 1;
        }
    }
    int passes = 0, failures = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        passes += workers[t].passes;
        failures += workers[t].failures;
        if (workers[t].failures) printf("FAIL %s\n", workers[t].first_failure);
    }
    printf("threads: %d threads, %d checks passed, %d failed\n", THREADS, passes, failures);
    return failures == 0 ? 0 : 1;
}
