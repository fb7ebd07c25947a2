#ifndef PIPELINE_COPENSSL_SHIM_H
#define PIPELINE_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#endif
