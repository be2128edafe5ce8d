// HTTP benchmark peers in plain C, for comparing MutewardenHTTP with libcurl used directly.
//
//   mutewarden-http-cbench serve [--seconds S]
//       A single-threaded epoll HTTP/1.1 keep-alive server on 127.0.0.1 (ephemeral port, printed
//       as "port N"). Answers every request "200 ok" after reading its body. It is here so that
//       the server is not what bounds the figure (the Python test peer would be).
//   mutewarden-http-cbench client --url URL [--requests N] [--in-flight K] [--body BYTES | --body-text TEXT] [--header H]
//       POSTs N requests through one libcurl multi handle with K in flight, reusing K easy
//       handles, and prints requests/s and latency percentiles: the baseline for the Swift layer.
//
// Everything stays on loopback, and both modes stop by themselves (server: after S seconds).

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// MARK: - Server

struct connection {
    int fd;
    char *in;
    size_t in_length, in_capacity;
    char *out;
    size_t out_length, out_sent, out_capacity;
};

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

static void append(char **buffer, size_t *length, size_t *capacity, const char *data, size_t count) {
    if (*length + count > *capacity) {
        size_t wanted = *capacity ? *capacity * 2 : 16384;
        while (wanted < *length + count) wanted *= 2;
        *buffer = realloc(*buffer, wanted);
        if (!*buffer) abort();
        *capacity = wanted;
    }
    memcpy(*buffer + *length, data, count);
    *length += count;
}

// Consumes every complete request in the input buffer and queues one response for each.
static void parse_requests(struct connection *c) {
    size_t offset = 0;
    for (;;) {
        char *start = c->in + offset;
        size_t available = c->in_length - offset;
        char *end = memmem(start, available, "\r\n\r\n", 4);
        if (!end) break;
        size_t header_length = (size_t)(end - start) + 4;
        size_t body_length = 0;
        for (char *line = start; line < end;) {
            char *next = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
            if (!next) break;
            if ((size_t)(next - line) > 15 && strncasecmp(line, "content-length:", 15) == 0) {
                body_length = strtoul(line + 15, NULL, 10);
            }
            line = next + 2;
        }
        if (available < header_length + body_length) break;
        offset += header_length + body_length;
        append(&c->out, &c->out_length, &c->out_capacity, response, sizeof(response) - 1);
    }
    memmove(c->in, c->in + offset, c->in_length - offset);
    c->in_length -= offset;
}

static int flush_output(struct connection *c) {
    while (c->out_sent < c->out_length) {
        ssize_t sent = send(c->fd, c->out + c->out_sent, c->out_length - c->out_sent, MSG_NOSIGNAL);
        if (sent < 0) return errno == EAGAIN ? 0 : -1;
        c->out_sent += (size_t)sent;
    }
    c->out_length = c->out_sent = 0;
    return 0;
}

static void close_connection(int epoll, struct connection *c) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static int serve(double seconds) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listener, 1024) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
        perror("listen");
        return 1;
    }
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);

    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    uint64_t stop_at = now_ns() + (uint64_t)(seconds * 1e9);
    struct epoll_event events[256];
    char chunk[65536];
    unsigned long long connections = 0;
    while (now_ns() < stop_at) {
        int ready = epoll_wait(epoll, events, 256, 1000);
        for (int i = 0; i < ready; i++) {
            struct connection *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct connection *fresh = calloc(1, sizeof(*fresh));
                    fresh->fd = fd;
                    struct epoll_event add = {.events = EPOLLIN, .data.ptr = fresh};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &add);
                    connections++;
                }
                continue;
            }
            int closed = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t got = recv(c->fd, chunk, sizeof(chunk), 0);
                    if (got > 0) {
                        append(&c->in, &c->in_length, &c->in_capacity, chunk, (size_t)got);
                        if ((size_t)got < sizeof(chunk)) break;
                    } else if (got == 0 || errno != EAGAIN) {
                        closed = 1;
                        break;
                    } else {
                        break;
                    }
                }
            }
            if (!closed) {
                parse_requests(c);
                if (flush_output(c) != 0) closed = 1;
            }
            if (closed) {
                close_connection(epoll, c);
                continue;
            }
            struct epoll_event modify = {.events = EPOLLIN | (c->out_length ? EPOLLOUT : 0), .data.ptr = c};
            epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &modify);
        }
    }
    fprintf(stderr, "server: %llu connections accepted\n", connections);
    return 0;
}

// MARK: - Client

struct transfer {
    CURL *easy;
    uint64_t started;
    size_t received;
    struct curl_slist *headers;
};

static size_t discard_into_count(char *data, size_t size, size_t count, void *context) {
    (void)data;
    struct transfer *t = context;
    t->received += size * count;
    return size * count;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

// The options a careful caller sets per request (what the Swift layer sets, minus its extras).
static void configure(struct transfer *t, const char *url, const char *body, size_t body_length) {
    curl_easy_reset(t->easy);
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, discard_into_count);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_length);
    curl_easy_setopt(t->easy, CURLOPT_COPYPOSTFIELDS, body);
    t->received = 0;
    t->started = now_ns();
}

static int client(const char *url, long requests, long in_flight, size_t body_length, const char *header, const char *body_text) {
    curl_global_init(CURL_GLOBAL_ALL);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, in_flight > 16 ? in_flight : 16L);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, in_flight > 64 ? in_flight : 64L);
    if (body_text) body_length = strlen(body_text);
    char *body = malloc(body_length + 1);
    if (body_text)
        memcpy(body, body_text, body_length);
    else
        memset(body, 'x', body_length);
    body[body_length] = 0;
    uint64_t *latencies = calloc((size_t)requests, sizeof(uint64_t));
    struct transfer *transfers = calloc((size_t)in_flight, sizeof(struct transfer));
    long started = 0, finished = 0, failures = 0, connections = 0;
    for (long i = 0; i < in_flight && started < requests; i++, started++) {
        transfers[i].easy = curl_easy_init();
        transfers[i].headers = curl_slist_append(NULL, "Content-Type: application/json");
        transfers[i].headers = curl_slist_append(transfers[i].headers, "Expect:");
        if (header)
            transfers[i].headers = curl_slist_append(transfers[i].headers, header);
        configure(&transfers[i], url, body, body_length);
        curl_multi_add_handle(multi, transfers[i].easy);
    }
    uint64_t begin = now_ns();
    double cpu_begin = cpu_seconds();
    while (finished < requests) {
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *message;
        int queued;
        while ((message = curl_multi_info_read(multi, &queued))) {
            if (message->msg != CURLMSG_DONE) continue;
            struct transfer *t;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            long status = 0, opened = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &opened);
            connections += opened;
            if (message->data.result != CURLE_OK || status != 200) failures++;
            latencies[finished++] = now_ns() - t->started;
            curl_multi_remove_handle(multi, t->easy);
            if (started < requests) {
                started++;
                configure(t, url, body, body_length);
                curl_multi_add_handle(multi, t->easy);
            }
        }
        if (finished < requests) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    double elapsed = (now_ns() - begin) / 1e9;
    double cpu = cpu_seconds() - cpu_begin;
    qsort(latencies, (size_t)requests, sizeof(uint64_t), compare);
    printf(
        "c/libcurl: %ld requests, %ld in flight: %.0f req/s, p50 %.1f us, p99 %.1f us, "
        "client CPU %.2f s (%.2f cores), %ld connections, %ld failures\n",
        requests, in_flight, requests / elapsed, latencies[requests / 2] / 1e3, latencies[requests * 99 / 100] / 1e3,
        cpu, cpu / elapsed, connections, failures);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
        double seconds = 600;
        for (int i = 2; i + 1 < argc; i += 2)
            if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        return serve(seconds);
    }
    if (argc >= 2 && strcmp(argv[1], "client") == 0) {
        const char *url = NULL, *header = NULL, *body_text = NULL;
        long requests = 100000, in_flight = 1;
        size_t body = 64;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--url") == 0) url = argv[i + 1];
            else if (strcmp(argv[i], "--requests") == 0) requests = atol(argv[i + 1]);
            else if (strcmp(argv[i], "--in-flight") == 0) in_flight = atol(argv[i + 1]);
            else if (strcmp(argv[i], "--body") == 0) body = (size_t)atol(argv[i + 1]);
            else if (strcmp(argv[i], "--header") == 0) header = argv[i + 1];
            else if (strcmp(argv[i], "--body-text") == 0) body_text = argv[i + 1];
        }
        if (url && requests > 0 && in_flight > 0) return client(url, requests, in_flight, body, header, body_text);
    }
    fprintf(stderr, "usage: %s serve [--seconds S] | client --url URL [--requests N] [--in-flight K] [--body BYTES | --body-text TEXT] [--header 'Name: value']\n",
            argv[0]);
    return 2;
}
