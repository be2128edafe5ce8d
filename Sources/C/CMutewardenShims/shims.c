#define _GNU_SOURCE
#include "CMutewardenShims.h"

#include <errno.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The one local protocol handler; the subprotocols the server may pick are separate.
#define MW_WS_PROTOCOL_NAME "mutewarden-ws"

CURLcode mw_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode mw_curl_easy_setopt_ptr(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode mw_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode mw_curl_easy_setopt_write_function(
    CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode mw_curl_easy_setopt_header_function(
    CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

CURLcode mw_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode mw_curl_easy_getinfo_ptr(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode mw_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLMcode mw_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

CURLSHcode mw_curl_share_setopt_long(CURLSH *share, CURLSHoption option, long value) {
    return curl_share_setopt(share, option, value);
}

CURLcode mw_curl_msg_result(const CURLMsg *message) { return message->data.result; }

size_t mw_lws_pre(void) { return LWS_PRE; }

// lws's own liveness checks stay out of the way: the Swift side runs pings, pong deadlines and the
// idle timeout itself, with sub-second resolution and its own error messages. 65535 s is the
// largest value the 16-bit fields hold.
static const lws_retry_bo_t mw_ws_no_lws_validity = {
    .secs_since_valid_ping = 0xffff,
    .secs_since_valid_hangup = 0xffff,
};

const struct lws_protocols *mw_ws_protocols_create(lws_callback_function *callback, size_t rx_buffer_size) {
    struct lws_protocols *protocols = calloc(2, sizeof *protocols);
    if (!protocols)
        return NULL;
    protocols[0].name = MW_WS_PROTOCOL_NAME;
    protocols[0].callback = callback;
    protocols[0].rx_buffer_size = rx_buffer_size;
    return protocols;
}

void mw_ws_protocols_free(const struct lws_protocols *protocols) { free((void *)protocols); }

struct lws_context *mw_ws_context_create(const struct lws_protocols *protocols, void *user) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = user;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS
        | LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;
    // The Swift side bounds connecting and closing with its own, configurable deadlines; these
    // are only a backstop so that nothing inside lws can hang forever.
    info.timeout_secs = 120;
    info.connect_timeout_secs = 120;
    info.retry_and_idle_policy = &mw_ws_no_lws_validity;
    // lws reads at most this much per socket per service pass (default 4 KiB, four 1 KiB
    // messages): a larger read means fewer passes, system calls and consumer wake-ups under load.
    info.pt_serv_buf_size = 256 * 1024;
    return lws_create_context(&info);
}

struct lws_vhost *mw_ws_vhost_create(
    struct lws_context *context, const struct lws_protocols *protocols, const char *name,
    const char *ca_file, const char *certificate_file, const char *key_file, const char *key_password) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.vhost_name = name;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = ca_file;
    info.client_ssl_cert_filepath = certificate_file;
    info.client_ssl_private_key_filepath = key_file;
    info.client_ssl_private_key_password = key_password;
    info.timeout_secs = 120;
    info.connect_timeout_secs = 120;
    info.retry_and_idle_policy = &mw_ws_no_lws_validity;
    return lws_create_vhost(context, &info);
}

struct lws *mw_ws_connect(
    struct lws_context *context, struct lws_vhost *vhost, const char *address, int port, int tls,
    int insecure, const char *path, const char *host, const char *origin, const char *subprotocols,
    uint64_t connection_id) {
    struct lws_client_connect_info info;
    struct lws *wsi = NULL;
    memset(&info, 0, sizeof info);
    info.context = context;
    info.vhost = vhost;
    info.address = address;
    info.port = port;
    info.path = path;
    info.host = host;
    info.origin = origin;
    info.protocol = subprotocols;
    // The callback's first protocol (our only one) handles the connection whatever subprotocol
    // the server picks.
    info.local_protocol_name = MW_WS_PROTOCOL_NAME;
    info.retry_and_idle_policy = &mw_ws_no_lws_validity;
    info.opaque_user_data = (void *)(uintptr_t)connection_id;
    info.pwsi = &wsi;
    if (tls) {
        info.ssl_connection = LCCSCF_USE_SSL;
        if (insecure)
            info.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK
                | LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    if (!lws_client_connect_via_info(&info))
        return NULL;
    return wsi;
}

uint64_t mw_ws_connection_id(struct lws *wsi) {
    return (uint64_t)(uintptr_t)lws_get_opaque_user_data(wsi);
}

int mw_ws_append_header(struct lws *wsi, void *in, size_t len, const char *name, const char *value) {
    unsigned char **position = (unsigned char **)in;
    unsigned char *end = *position + len - 1;
    char field[256];
    int written = snprintf(field, sizeof field, "%s:", name);
    if (written < 0 || (size_t)written >= sizeof field)
        return 1;
    return lws_add_http_header_by_name(
        wsi, (const unsigned char *)field, (const unsigned char *)value, (int)strlen(value),
        position, end);
}

void mw_ws_kill(struct lws *wsi) { lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC); }

const char *mw_ws_certificate_error(void *store_context) {
    int error = X509_STORE_CTX_get_error((X509_STORE_CTX *)store_context);
    return error == X509_V_OK ? NULL : X509_verify_cert_error_string(error);
}

void mw_set_thread_name(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    pthread_setname_np(pthread_self(), truncated);
}

int mw_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct lws_context *mw_lws_server_context_create(const struct lws_protocols *protocols, int port, void *user) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.user = user;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    // A held long poll is the client's business, not a stalled peer: only the keep-alive idle
    // timeout should ever close a connection, and the run is over long before it.
    info.timeout_secs = 300;
    info.keepalive_timeout = 300;
    info.retry_and_idle_policy = &mw_ws_no_lws_validity;
    // Bigger reads per pass: the daemon's requests and WebSocket messages arrive in bursts.
    info.pt_serv_buf_size = 256 * 1024;
    info.max_http_header_data = 4096;
    return lws_create_context(&info);
}

int mw_lws_http_write_head(
    struct lws *wsi, unsigned int status, const char *content_type, size_t content_length,
    const char *const *names, const char *const *values, int count) {
    unsigned char buffer[LWS_PRE + 2048];
    unsigned char *start = buffer + LWS_PRE, *position = start, *end = buffer + sizeof buffer - 1;
    if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)content_length, &position, end))
        return 1;
    for (int i = 0; i < count; i++) {
        char field[256];
        int written = snprintf(field, sizeof field, "%s:", names[i]);
        if (written < 0 || (size_t)written >= sizeof field)
            return 1;
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)field, (const unsigned char *)values[i], (int)strlen(values[i]),
                &position, end))
            return 1;
    }
    return lws_finalize_write_http_header(wsi, start, &position, end);
}

size_t mw_malloc_bytes_in_use(void) { return mallinfo2().uordblks; }

int mw_set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, (id_t)gettid(), nice); }

int mw_set_thread_idle_policy(void) {
    struct sched_param param = {.sched_priority = 0};
    // With pid 0, Linux applies the policy to the calling thread only.
    return sched_setscheduler(0, SCHED_IDLE, &param) == 0 ? 0 : errno;
}

struct lws_context *mw_ingress_context_create(
    const struct lws_protocols *protocols, void *user, const char *address, int port,
    const char *certificate_file, const char *key_file, unsigned int idle_seconds,
    unsigned int header_pool, unsigned int header_bytes) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = address;
    info.protocols = protocols;
    info.user = user;
    info.gid = -1;
    info.uid = -1;
    info.vhost_name = "mw-ingress";
    if (!address || !strchr(address, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (certificate_file && key_file) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = certificate_file;
        info.ssl_private_key_filepath = key_file;
        info.alpn = "http/1.1";
    }
    info.timeout_secs = idle_seconds;
    info.keepalive_timeout = (int)idle_seconds;
    info.timeout_secs_ah_idle = idle_seconds;
    info.retry_and_idle_policy = &mw_ws_no_lws_validity;
    info.max_http_header_pool = header_pool > 0xffff ? 0xffff : (unsigned short)header_pool;
    info.max_http_header_data = header_bytes > 0xffff ? 0xffff : (unsigned short)header_bytes;
    info.pt_serv_buf_size = 64 * 1024;
    return lws_create_context(&info);
}

int mw_ingress_listen_port(struct lws_context *context) {
    struct lws_vhost *vhost = lws_get_vhost_by_name(context, "mw-ingress");
    return vhost ? lws_get_vhost_listen_port(vhost) : -1;
}

const char *mw_ingress_method(struct lws *wsi, int *uri_token) {
    static const struct {
        enum lws_token_indexes token;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_POST_URI, "POST"}, {WSI_TOKEN_GET_URI, "GET"}, {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
            *uri_token = (int)methods[i].token;
            return methods[i].name;
        }
    }
    return NULL;
}

int mw_ingress_uri_args_token(void) { return (int)WSI_TOKEN_HTTP_URI_ARGS; }

int mw_ingress_token_count(void) { return (int)WSI_TOKEN_COUNT; }

int mw_ingress_write_continue(struct lws *wsi) {
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buffer[LWS_PRE + sizeof line];
    memcpy(buffer + LWS_PRE, line, sizeof line - 1);
    return lws_write(wsi, buffer + LWS_PRE, sizeof line - 1, LWS_WRITE_HTTP) < (int)(sizeof line - 1);
}

int mw_peer_credentials(int fd, unsigned int *uid, unsigned int *gid, int *pid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return errno;
    if (length != sizeof(credentials)) return EINVAL;
    *uid = credentials.uid;
    *gid = credentials.gid;
    *pid = credentials.pid;
    return 0;
}
