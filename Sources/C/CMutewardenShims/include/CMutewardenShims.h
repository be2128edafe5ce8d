// Typed entry points for the C APIs that Swift cannot import as they are:
// curl's setopt/getinfo are variadic, and libwebsockets exposes sizes and flags as macros.
#ifndef CMUTEWARDEN_SHIMS_H
#define CMUTEWARDEN_SHIMS_H

#include <curl/curl.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

// curl_easy_setopt, one function per argument type the option takes.
CURLcode mw_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode mw_curl_easy_setopt_ptr(CURL *handle, CURLoption option, const void *value);
CURLcode mw_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode mw_curl_easy_setopt_write_function(
    CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode mw_curl_easy_setopt_header_function(
    CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));

// curl_easy_getinfo, one function per result type.
CURLcode mw_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode mw_curl_easy_getinfo_ptr(CURL *handle, CURLINFO info, void **value);
CURLcode mw_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

// curl_multi_setopt.
CURLMcode mw_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

// curl_share_setopt (variadic too): which data a share handle shares, e.g. CURL_LOCK_DATA_COOKIE.
CURLSHcode mw_curl_share_setopt_long(CURLSH *share, CURLSHoption option, long value);

// The result of a finished transfer sits in an anonymous union of CURLMsg; reading it in C keeps
// the Swift side independent of how the union is imported.
CURLcode mw_curl_msg_result(const CURLMsg *message);

// libwebsockets: the write padding every buffer handed to lws_write must reserve in front.
size_t mw_lws_pre(void);

// libwebsockets client side. The structs these fill have fields that depend on how the library was
// built (`#if defined(LWS_WITH_...)`), so they are filled in C, against the headers of the library
// we link, and never laid out by Swift.

// The protocol table of a context: one handler, `callback`, receiving in chunks of up to
// `rx_buffer_size` bytes. Free it only after the context is destroyed.
const struct lws_protocols *mw_ws_protocols_create(lws_callback_function *callback, size_t rx_buffer_size);
void mw_ws_protocols_free(const struct lws_protocols *protocols);

// A client-only context: no listening socket, no vhost until mw_ws_vhost_create, OpenSSL set up
// for wss, and the Origin header sent exactly as given. `protocols` must outlive the context.
struct lws_context *mw_ws_context_create(const struct lws_protocols *protocols, void *user);

// One client vhost per TLS configuration: the client SSL_CTX (CA bundle, client certificate and
// key) belongs to the vhost in lws 4.1. NULL paths mean the system's CAs and no client certificate.
struct lws_vhost *mw_ws_vhost_create(
    struct lws_context *context, const struct lws_protocols *protocols, const char *name,
    const char *ca_file, const char *certificate_file, const char *key_file, const char *key_password);

// Starts a ws/wss connection to a numeric `address`; `host` is the Host header and the name the
// server certificate is checked against (and SNI). `insecure` turns every certificate check off.
// `connection_id` comes back from mw_ws_connection_id on every callback of this connection.
struct lws *mw_ws_connect(
    struct lws_context *context, struct lws_vhost *vhost, const char *address, int port, int tls,
    int insecure, const char *path, const char *host, const char *origin, const char *subprotocols,
    uint64_t connection_id);

uint64_t mw_ws_connection_id(struct lws *wsi);

// Appends `name: value` in LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER (`in`, `len` as given to
// the callback). Nonzero when the header does not fit.
int mw_ws_append_header(struct lws *wsi, void *in, size_t len, const char *name, const char *value);

// In LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION (`user` is the X509_STORE_CTX): why
// the server certificate failed to verify, in OpenSSL's words, or NULL. lws 4.1's own connection
// error for this case is only "connect SSL err 1: error:00000001:lib(0)::reason(1)".
const char *mw_ws_certificate_error(void *store_context);

// Closes the connection from the next service pass, without a close handshake: for a peer that
// has stopped answering, and for a connection that never got established.
void mw_ws_kill(struct lws *wsi);

// Names the calling thread, as `top -H` and /proc show it (Linux keeps the first 15 bytes).
// pthread_setname_np is a GNU extension that Swift's Glibc module does not export.
void mw_set_thread_name(const char *name);

// Pins the calling thread (not its process) to one CPU; 0 on success, else errno. CPU_SET and
// friends are macros, which Swift cannot call.
int mw_pin_current_thread(int cpu);

// Sets the calling thread's nice value (Linux schedules threads, so this affects only it).
// gettid is not exported by Swift's Glibc module.
int mw_set_thread_nice(int nice);

// Puts the calling thread in SCHED_IDLE: it runs only when nothing else on its CPU wants to, and
// any other thread that wakes takes the CPU from it at once. 0 on success, else errno. SCHED_IDLE
// needs _GNU_SOURCE, which Swift's Glibc module is not built with.
int mw_set_thread_idle_policy(void);

// mallinfo2().uordblks: the bytes malloc has handed out and not had back (leak regression
// tests); <malloc.h> is not part of Swift's Glibc module.
size_t mw_malloc_bytes_in_use(void);

// libwebsockets server side, for the load generator that plays the platform on 127.0.0.1 (the
// daemon's own listener is the ingress's, below). One vhost on 127.0.0.1:`port` (0: the kernel picks; read it back
// with lws_get_vhost_listen_port), HTTP/1.1 with keep-alive and WebSocket upgrades, both handled
// by the first protocol of `protocols`.
struct lws_context *mw_lws_server_context_create(const struct lws_protocols *protocols, int port, void *user);

// Writes an HTTP/1.1 response head: status, Content-Type, Content-Length and `count` extra
// headers (`names` without the colon). Nonzero on failure (the connection should be closed).
// lws_add_http_* need a buffer with LWS_PRE in front and pointer-to-pointer cursors, which are
// simpler to get right in C.
int mw_lws_http_write_head(
    struct lws *wsi, unsigned int status, const char *content_type, size_t content_length,
    const char *const *names, const char *const *values, int count);

// libwebsockets server side for the daemon's callback ingress (MutewardenIngress): one vhost
// listening on `address` (NULL: every address; an IPv6 literal turns IPv6 on) and `port` (0: the
// kernel picks). TLS when `certificate_file` and `key_file` are given, HTTP/1.1 only (no h2 by
// ALPN: its streams would need flow control per stream). `idle_seconds` bounds lws's own waits
// (a TLS handshake, a kept-alive connection's next request); the Swift side keeps the finer
// deadlines. `header_pool` header tables, one per connection being parsed, each up to
// `header_bytes`. NULL on failure.
struct lws_context *mw_ingress_context_create(
    const struct lws_protocols *protocols, void *user, const char *address, int port,
    const char *certificate_file, const char *key_file, unsigned int idle_seconds,
    unsigned int header_pool, unsigned int header_bytes);

// The port the ingress listens on, once created (the kernel's choice when 0 was asked).
int mw_ingress_listen_port(struct lws_context *context);

// The request's method, from which URI token lws filled in ("GET", "POST", ...), or NULL; the
// token (its path) goes to `uri_token`.
const char *mw_ingress_method(struct lws *wsi, int *uri_token);

// The token index of the query arguments and the number of header tokens, which depend on how
// lws was built (LWS_WITH_HTTP_UNCOMMON_HEADERS shifts the enum).
int mw_ingress_uri_args_token(void);
int mw_ingress_token_count(void);

// Writes "HTTP/1.1 100 Continue" before the body of an accepted request that asked for it.
// Nonzero on failure.
int mw_ingress_write_continue(struct lws *wsi);

// The credentials of the process at the other end of a connected AF_UNIX socket (SO_PEERCRED),
// as the kernel recorded them at connect(2). 0 on success, else errno. `struct ucred` needs
// _GNU_SOURCE, which Swift's Glibc module is not built with.
int mw_peer_credentials(int fd, unsigned int *uid, unsigned int *gid, int *pid);

#endif
