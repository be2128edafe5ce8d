// Typed entry points for the C APIs that Swift cannot import as they are:
// curl's setopt/getinfo are variadic, and libwebsockets exposes sizes and flags as macros.
#ifndef CMUTEWARDEN_SHIMS_H
#define CMUTEWARDEN_SHIMS_H

#include <curl/curl.h>
#include <libwebsockets.h>
#include <stddef.h>

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

#endif
