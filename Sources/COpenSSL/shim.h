#ifndef CASEBRIDGE_COPENSSL_SHIM_H
#define CASEBRIDGE_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/cms.h>

// sk_X509_num / sk_X509_value / sk_X509_free are generated macros (signed receipts' signers).
static inline int cb_x509_stack_count(STACK_OF(X509) *certs) { return sk_X509_num(certs); }
static inline X509 *cb_x509_stack_value(STACK_OF(X509) *certs, int i) { return sk_X509_value(certs, i); }
static inline void cb_x509_stack_free(STACK_OF(X509) *certs) { sk_X509_free(certs); }

// SHA-256 on a state kept by value: OpenSSL's low-level interface, deprecated in 3.0 but kept. The
// blind index's keyed hash starts each of thousands of short terms from two keyed states; through
// EVP, each start allocates and frees a context (two thirds of a term's cost, measured).
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline void cb_sha256_init(SHA256_CTX *state) { SHA256_Init(state); }
static inline void cb_sha256_update(SHA256_CTX *state, const void *bytes, size_t count) {
    SHA256_Update(state, bytes, count);
}
static inline void cb_sha256_final(unsigned char *digest, SHA256_CTX *state) { SHA256_Final(digest, state); }
#pragma clang diagnostic pop

// SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl.
static inline int cb_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_min_proto_version(ctx, version); }
// SSL_CTX_set_max_proto_version is a macro over SSL_CTX_ctrl.
static inline int cb_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) { return (int)SSL_CTX_set_max_proto_version(ctx, version); }
// SSL_CTX_set_mode is a macro over SSL_CTX_ctrl.
static inline long cb_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }

// TLS 1.3 tickets that name a session kept in the server's own cache (of at most `size` sessions),
// instead of carrying the session encrypted: no session (with its client certificate) is encoded and
// decoded again for each ticket issued or presented.
static inline void cb_SSL_CTX_use_stateful_tickets(SSL_CTX *ctx, long size) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, size);
}
// SSL_CTX_build_cert_chain is a macro over SSL_CTX_ctrl. The chain sent with this side's certificate,
// built once (without the CA root, which every peer holds): otherwise OpenSSL builds it again, with CRL
// checks, in every handshake. A chain that does not verify (an expired certificate) is still sent, as
// before, for the peer to refuse with a reason.
static inline int cb_SSL_CTX_build_cert_chain(SSL_CTX *ctx) {
    return (int)SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR
                                              | SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
}
// SSL_set_tlsext_host_name is a macro over SSL_ctrl.
static inline int cb_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
// sk_GENERAL_NAME_num and sk_GENERAL_NAME_value are generated macros.
static inline int cb_general_names_count(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline const GENERAL_NAME *cb_general_names_value(const GENERAL_NAMES *names, int i) { return sk_GENERAL_NAME_value(names, i); }
// GENERAL_NAME keeps its value in a union that Swift imports awkwardly; return the URI if it is one.
static inline const ASN1_IA5STRING *cb_general_name_uri(const GENERAL_NAME *name) { return name->type == GEN_URI ? name->d.uniformResourceIdentifier : NULL; }
// GENERAL_NAMES_free is declared through a macro-generated prototype.
static inline void cb_general_names_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }
// OPENSSL_free is a macro that passes file and line.
static inline void cb_OPENSSL_free(void *p) { OPENSSL_free(p); }
// BIO_get_mem_data is a macro over BIO_ctrl.
static inline long cb_BIO_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
// sk_X509_REVOKED_num and sk_X509_REVOKED_value are generated macros.
static inline int cb_revoked_count(const STACK_OF(X509_REVOKED) *list) { return sk_X509_REVOKED_num(list); }
static inline X509_REVOKED *cb_revoked_value(const STACK_OF(X509_REVOKED) *list, int i) { return sk_X509_REVOKED_value(list, i); }
#endif
