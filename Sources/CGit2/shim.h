#ifndef PIPELINE_CGIT2_SHIM_H
#define PIPELINE_CGIT2_SHIM_H
#include <git2.h>

/* git_libgit2_opts is variadic: one typed wrapper per option used. */
static inline int pipeline_git_set_ssl_cert_locations(const char *_Nullable file, const char *_Nullable path) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, path);
}
static inline int pipeline_git_set_strict_hash_verification(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}
static inline int pipeline_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}
#endif
