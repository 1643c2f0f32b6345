/*
 * cnats-bench: reference numbers from the NATS C client (libnats) for
 * comparison with natswire-bench. Both print one line in the same format.
 *
 *   cnats-bench pub    N SIZE   publish N msgs of SIZE bytes to bench.pub, then flush
 *   cnats-bench pubsub N SIZE   conn A subscribes bench.ps, conn B publishes N msgs;
 *                               rate = received / (first publish .. last receive)
 *   cnats-bench req    N SIZE   conn A echoes requests on bench.req, conn B makes
 *                               N sequential requests; reports latency percentiles
 *   cnats-bench kvput  N SIZE   JetStream KV bucket BENCHKV (history 1, file storage):
 *                               N sequential puts of SIZE-byte values on keys k<i % 1000>
 *   cnats-bench kvget  N SIZE   puts the 1000 keys, then N sequential gets over them
 *
 * Server URL: $NATS_URL (default nats://127.0.0.1:4222).
 *
 * Build:
 *   gcc -O2 -o Benchmarks/cnats/cnats-bench Benchmarks/cnats/cnats-bench.c \
 *       $(pkg-config --cflags --libs libnats)        # or: -lnats
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define PUB_SUBJECT "bench.pub"
#define PUBSUB_SUBJECT "bench.ps"
#define REQ_SUBJECT "bench.req"
#define KV_BUCKET "BENCHKV"
#define KV_KEYS 1000

/* Give up on pubsub when no message arrived for this long. */
#define STALL_TIMEOUT_NS (10LL * 1000 * 1000 * 1000)
#define REQUEST_TIMEOUT_MS 5000
#define FLUSH_TIMEOUT_MS 120000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Peak resident set size (VmHWM) in MB, or -1 when unavailable. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1.0;
    char line[256];
    double result = -1.0;
    while (fgets(line, sizeof line, f) != NULL) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
            result = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return result;
}

static void die_status(const char *what, natsStatus s) {
    fprintf(stderr, "cnats-bench: %s failed: %s (%d)\n", what, natsStatus_GetText(s), (int)s);
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

#define CHECK(what, expr)                      \
    do {                                       \
        natsStatus check_s_ = (expr);          \
        if (check_s_ != NATS_OK) die_status(what, check_s_); \
    } while (0)

static const char *server_url(void) {
    const char *url = getenv("NATS_URL");
    return (url != NULL && url[0] != '\0') ? url : "nats://127.0.0.1:4222";
}

static natsConnection *connect_to(const char *name, bool send_asap) {
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    CHECK("natsOptions_Create", natsOptions_Create(&opts));
    CHECK("natsOptions_SetURL", natsOptions_SetURL(opts, server_url()));
    CHECK("natsOptions_SetName", natsOptions_SetName(opts, name));
    CHECK("natsOptions_SetAllowReconnect", natsOptions_SetAllowReconnect(opts, false));
    if (send_asap) {
        CHECK("natsOptions_SetSendAsap", natsOptions_SetSendAsap(opts, true));
    }
    natsStatus s = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        fprintf(stderr, "cnats-bench: cannot connect to %s\n", server_url());
        die_status("natsConnection_Connect", s);
    }
    return nc;
}

static char *make_payload(int size) {
    char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) {
        fprintf(stderr, "cnats-bench: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < size; i++) buf[i] = (char)('a' + (i % 26));
    return buf;
}

/* ---------------------------------------------------------------- pub */

static void run_pub(long n, int size) {
    natsConnection *nc = connect_to("cnats-bench-pub", false);
    char *payload = make_payload(size);

    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        natsStatus s = natsConnection_Publish(nc, PUB_SUBJECT, payload, size);
        if (s != NATS_OK) die_status("natsConnection_Publish", s);
    }
    CHECK("natsConnection_FlushTimeout", natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS));
    int64_t elapsed = now_ns() - start;

    double rate = elapsed > 0 ? (double)n * 1e9 / (double)elapsed : 0.0;
    double rss = peak_rss_mb();
    printf("cnats pub msgs=%ld size=%d rate=%.0f peak_rss_mb=%.1f\n", n, size, rate, rss);
    fflush(stdout);

    free(payload);
    natsConnection_Destroy(nc);
}

/* ------------------------------------------------------------- pubsub */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long expected;
    long received;
    int64_t last_receive_ns;
} pubsub_state;

static void on_pubsub_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    pubsub_state *st = closure;
    natsMsg_Destroy(msg);
    pthread_mutex_lock(&st->lock);
    st->received++;
    st->last_receive_ns = now_ns();
    if (st->received >= st->expected) pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void run_pubsub(long n, int size) {
    pubsub_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    st.expected = n;

    natsConnection *sub_nc = connect_to("cnats-bench-sub", false);
    natsConnection *pub_nc = connect_to("cnats-bench-pub", false);
    natsSubscription *sub = NULL;
    CHECK("natsConnection_Subscribe", natsConnection_Subscribe(&sub, sub_nc, PUBSUB_SUBJECT, on_pubsub_msg, &st));
    /* Never drop messages on the client side. */
    CHECK("natsSubscription_SetPendingLimits", natsSubscription_SetPendingLimits(sub, -1, -1));
    /* Make sure the server has registered the interest before publishing. */
    CHECK("natsConnection_FlushTimeout(sub)", natsConnection_FlushTimeout(sub_nc, FLUSH_TIMEOUT_MS));

    char *payload = make_payload(size);
    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        natsStatus s = natsConnection_Publish(pub_nc, PUBSUB_SUBJECT, payload, size);
        if (s != NATS_OK) die_status("natsConnection_Publish", s);
    }
    CHECK("natsConnection_FlushTimeout(pub)", natsConnection_FlushTimeout(pub_nc, FLUSH_TIMEOUT_MS));

    long received;
    int64_t last;
    pthread_mutex_lock(&st.lock);
    long seen = st.received;
    int64_t progress_at = now_ns();
    while (st.received < n) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 100 * 1000 * 1000;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st.cond, &st.lock, &deadline);
        if (st.received != seen) {
            seen = st.received;
            progress_at = now_ns();
        } else if (now_ns() - progress_at > STALL_TIMEOUT_NS) {
            break;
        }
    }
    received = st.received;
    last = st.last_receive_ns;
    pthread_mutex_unlock(&st.lock);

    if (received < n) {
        fprintf(stderr, "cnats-bench: pubsub received only %ld of %ld messages\n", received, n);
    }
    int64_t elapsed = last - start;
    double rate = (received > 0 && elapsed > 0) ? (double)received * 1e9 / (double)elapsed : 0.0;
    double rss = peak_rss_mb();
    printf("cnats pubsub msgs=%ld size=%d rate=%.0f peak_rss_mb=%.1f\n", received, size, rate, rss);
    fflush(stdout);

    free(payload);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pub_nc);
    natsConnection_Destroy(sub_nc);
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.lock);
    if (received < n) exit(1);
}

/* ---------------------------------------------------------------- req */

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)sub;
    (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply != NULL && reply[0] != '\0') {
        natsStatus s = natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
        if (s != NATS_OK) {
            fprintf(stderr, "cnats-bench: responder publish failed: %s\n", natsStatus_GetText(s));
        }
    }
    natsMsg_Destroy(msg);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double percentile_us(const int64_t *sorted, long n, double p) {
    if (n <= 0) return 0.0;
    long rank = (long)((p / 100.0) * (double)n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static void run_req(long n, int size) {
    /* The responder also sends as soon as it publishes, so the C side is
     * measured at its lowest latency setting. */
    natsConnection *resp_nc = connect_to("cnats-bench-responder", true);
    natsConnection *req_nc = connect_to("cnats-bench-requester", true);
    natsSubscription *sub = NULL;
    CHECK("natsConnection_Subscribe", natsConnection_Subscribe(&sub, resp_nc, REQ_SUBJECT, on_request, NULL));
    CHECK("natsSubscription_SetPendingLimits", natsSubscription_SetPendingLimits(sub, -1, -1));
    CHECK("natsConnection_FlushTimeout(responder)", natsConnection_FlushTimeout(resp_nc, FLUSH_TIMEOUT_MS));

    char *payload = make_payload(size);
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (lat == NULL) {
        fprintf(stderr, "cnats-bench: out of memory\n");
        exit(1);
    }

    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        natsMsg *reply = NULL;
        int64_t t0 = now_ns();
        natsStatus s = natsConnection_Request(&reply, req_nc, REQ_SUBJECT, payload, size, REQUEST_TIMEOUT_MS);
        int64_t t1 = now_ns();
        if (s != NATS_OK) die_status("natsConnection_Request", s);
        if (natsMsg_GetDataLength(reply) != size) {
            fprintf(stderr, "cnats-bench: reply has %d bytes, expected %d\n", natsMsg_GetDataLength(reply), size);
            exit(1);
        }
        natsMsg_Destroy(reply);
        lat[i] = t1 - t0;
    }
    int64_t elapsed = now_ns() - start;

    qsort(lat, (size_t)n, sizeof(int64_t), cmp_i64);
    double rate = elapsed > 0 ? (double)n * 1e9 / (double)elapsed : 0.0;
    double rss = peak_rss_mb();
    printf("cnats req msgs=%ld size=%d rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f peak_rss_mb=%.1f\n",
           n, size, rate, percentile_us(lat, n, 50.0), percentile_us(lat, n, 90.0),
           percentile_us(lat, n, 99.0), rss);
    fflush(stdout);

    free(lat);
    free(payload);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(req_nc);
    natsConnection_Destroy(resp_nc);
}

/* ----------------------------------------------------------------- kv */

static kvStore *open_bucket(jsCtx *js) {
    kvStore *kv = NULL;
    kvConfig cfg;
    CHECK("kvConfig_Init", kvConfig_Init(&cfg));
    cfg.Bucket = KV_BUCKET;
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    natsStatus s = js_CreateKeyValue(&kv, js, &cfg);
    if (s != NATS_OK) {
        /* The bucket may already exist with a different configuration: bind to it. */
        kv = NULL;
        s = js_KeyValue(&kv, js, KV_BUCKET);
        if (s != NATS_OK) die_status("js_CreateKeyValue / js_KeyValue", s);
    }
    return kv;
}

static void kv_put(kvStore *kv, long i, const char *payload, int size) {
    char key[32];
    snprintf(key, sizeof key, "k%ld", i % KV_KEYS);
    uint64_t rev = 0;
    natsStatus s = kvStore_Put(&rev, kv, key, payload, size);
    if (s != NATS_OK) die_status("kvStore_Put", s);
}

static void run_kv(long n, int size, bool put) {
    natsConnection *nc = connect_to(put ? "cnats-bench-kvput" : "cnats-bench-kvget", true);
    jsCtx *js = NULL;
    CHECK("natsConnection_JetStream", natsConnection_JetStream(&js, nc, NULL));
    kvStore *kv = open_bucket(js);
    char *payload = make_payload(size);

    if (!put) {
        for (long i = 0; i < KV_KEYS; i++) kv_put(kv, i, payload, size);
    }

    int64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        if (put) {
            kv_put(kv, i, payload, size);
        } else {
            char key[32];
            snprintf(key, sizeof key, "k%ld", i % KV_KEYS);
            kvEntry *e = NULL;
            natsStatus s = kvStore_Get(&e, kv, key);
            if (s != NATS_OK) die_status("kvStore_Get", s);
            if (kvEntry_ValueLen(e) != size) {
                fprintf(stderr, "cnats-bench: %s has %d bytes, expected %d\n", key, kvEntry_ValueLen(e), size);
                exit(1);
            }
            kvEntry_Destroy(e);
        }
    }
    int64_t elapsed = now_ns() - start;

    double rate = elapsed > 0 ? (double)n * 1e9 / (double)elapsed : 0.0;
    double rss = peak_rss_mb();
    printf("cnats %s msgs=%ld size=%d rate=%.0f peak_rss_mb=%.1f\n", put ? "kvput" : "kvget", n, size, rate, rss);
    fflush(stdout);

    free(payload);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* --------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr,
            "usage: cnats-bench MODE N SIZE\n"
            "  MODE: pub | pubsub | req | kvput | kvget\n"
            "  N:    number of messages (> 0)\n"
            "  SIZE: payload size in bytes (>= 0)\n"
            "  server URL from $NATS_URL (default nats://127.0.0.1:4222)\n");
    exit(2);
}

static long parse_long(const char *text, long min) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min) usage();
    return v;
}

int main(int argc, char **argv) {
    if (argc != 4) usage();
    const char *mode = argv[1];
    long n = parse_long(argv[2], 1);
    long size_l = parse_long(argv[3], 0);
    if (size_l > 64L * 1024 * 1024) usage();
    int size = (int)size_l;

    CHECK("nats_Open", nats_Open(-1));
    if (strcmp(mode, "pub") == 0) {
        run_pub(n, size);
    } else if (strcmp(mode, "pubsub") == 0) {
        run_pubsub(n, size);
    } else if (strcmp(mode, "req") == 0) {
        run_req(n, size);
    } else if (strcmp(mode, "kvput") == 0) {
        run_kv(n, size, true);
    } else if (strcmp(mode, "kvget") == 0) {
        run_kv(n, size, false);
    } else {
        usage();
    }
    nats_Close();
    return 0;
}
