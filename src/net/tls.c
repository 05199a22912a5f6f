/* tls.c -- building the server's OpenSSL context from the configuration. */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Last OpenSSL error as text, for start-up and reload messages. */
static const char *tls_errstr(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* ALPN (RFC 7443): take "stun.turn" or "stun.nat-discovery" when offered;
 * a client that offers only other protocols is still served without ALPN. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
			   unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x09stun.turn\x12stun.nat-discovery";
	unsigned char *sel;
	unsigned char sellen;

	if (SSL_select_next_proto(&sel, &sellen, ours, sizeof(ours) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	*outlen = sellen;
	return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	int floor = TLS1_2_VERSION;

	if (cfg->cert == NULL || cfg->pkey == NULL) {
		snprintf(err, errlen, "TLS needs both 'cert' and 'pkey'");
		return NULL;
	}
	/* OpenSSL says "system lib" for a missing file: say it plainly. */
	if (access(cfg->cert, R_OK) < 0 || access(cfg->pkey, R_OK) < 0 ||
	    (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) < 0)) {
		const char *f = access(cfg->cert, R_OK) < 0 ? cfg->cert : access(cfg->pkey, R_OK) < 0 ? cfg->pkey
												 : cfg->ca_file;

		snprintf(err, errlen, "cannot read '%s': %s", f, strerror(errno));
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s", tls_errstr());
		return NULL;
	}
	if (cfg->no_tlsv1_2)
		floor = TLS1_3_VERSION;
	else if (!cfg->no_tlsv1)
		floor = TLS1_VERSION;
	else if (!cfg->no_tlsv1_1)
		floor = TLS1_1_VERSION;
	SSL_CTX_set_min_proto_version(ctx, floor);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
	/* Keep plaintext buffers only while a record is in flight. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
		snprintf(err, errlen, "cert '%s': %s", cfg->cert, tls_errstr());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->pkey, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "pkey '%s': %s", cfg->pkey, tls_errstr());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "pkey '%s' does not match cert '%s'", cfg->pkey, cfg->cert);
		goto fail;
	}
	if (cfg->ca_file != NULL && SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
		snprintf(err, errlen, "ca-file '%s': %s", cfg->ca_file, tls_errstr());
		goto fail;
	}
	if (cfg->cipher_list != NULL && SSL_CTX_set_cipher_list(ctx, cfg->cipher_list) != 1) {
		snprintf(err, errlen, "cipher-list '%s': %s", cfg->cipher_list, tls_errstr());
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
