#ifndef PIPELINE_CCURL_SHIM_H
#define PIPELINE_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them, so each argument type gets a
   typed wrapper. */
static inline CURLcode pipeline_curl_setopt_long(CURL *_Nonnull handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode pipeline_curl_setopt_string(CURL *_Nonnull handle, CURLoption option, const char *_Nullable value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode pipeline_curl_setopt_pointer(CURL *_Nonnull handle, CURLoption option, void *_Nullable value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode pipeline_curl_getinfo_long(CURL *_Nonnull handle, CURLINFO info, long *_Nonnull value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode pipeline_curl_getinfo_pointer(CURL *_Nonnull handle, CURLINFO info, char *_Nullable *_Nonnull value) {
    return curl_easy_getinfo(handle, info, value);
}

typedef size_t (*pipeline_curl_data_callback)(char *_Nonnull data, size_t size, size_t count, void *_Nullable context);

/* The callback options take function pointers: typed setters keep them out of the variadic call. */
static inline CURLcode pipeline_curl_set_write_function(CURL *_Nonnull handle, pipeline_curl_data_callback _Nullable fn) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, fn);
}
static inline CURLcode pipeline_curl_set_header_function(CURL *_Nonnull handle, pipeline_curl_data_callback _Nullable fn) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, fn);
}
static inline CURLcode pipeline_curl_set_read_function(CURL *_Nonnull handle, pipeline_curl_data_callback _Nullable fn) {
    return curl_easy_setopt(handle, CURLOPT_READFUNCTION, fn);
}
typedef int (*pipeline_curl_seek_callback)(void *_Nullable context, curl_off_t offset, int origin);
static inline CURLcode pipeline_curl_set_seek_function(CURL *_Nonnull handle, pipeline_curl_seek_callback _Nullable fn) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, fn);
}
static inline CURLcode pipeline_curl_setopt_off(CURL *_Nonnull handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
#endif
