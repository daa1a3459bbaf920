#ifndef GIMLET_COPENSSL_SHIM_H
#define GIMLET_COPENSSL_SHIM_H

// OpenSSL's libcrypto: HMAC, HKDF, AES-GCM, random bytes. Debian: libssl-dev.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#endif
