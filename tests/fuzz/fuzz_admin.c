/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the admin endpoint's request parser.
 *
 * Each input is the bytes a client sent, and each prefix of it is what the
 * server had received at some point; every parse gets a block of exactly
 * the bytes it may read.  The invariants are those router/admin.h lists
 * for sl_admin_parse_request(), and two more; any broken one aborts:
 *
 *  1. The result is > 0, 0 or -EBADMSG, a positive one at most the length.
 *     A complete request has status 0, size equal to the result, a body
 *     within SL_ADMIN_BODY_MAX, and every view inside its first size
 *     bytes; host and authorization point into its headers.
 *  2. A refusal has a reason and a status of 400, 413, 414, 431, 501 or
 *     505.
 *  3. Growing the input never changes a verdict: the prefixes give 0 up
 *     to some length, and from there on all give the same result and
 *     status as the whole input.
 *  4. While incomplete, the status is 413, 414 or 431, or 400 while the
 *     method is still arriving.
 *  5. The parse is pure: the same bytes give the same result, field for
 *     field.
 *  6. A complete request, written out again in the plainest form (one
 *     space after each colon, the headers and body as parsed), parses to
 *     the same method, target, version, headers and body.
 */
#include <errno.h>
#include <stddef.h>

#include "router/admin.h"

#include "fuzz.h"

/* Prefixes up to this long are all parsed; past it, a sample. */
#define FUZZ_ALL_PREFIXES 2048
#define FUZZ_SAMPLED_PREFIXES 96

static bool
view_inside(const char *v, size_t len, const char *buf, size_t size)
{
	return len == 0 ||
	       (v != NULL && v >= buf && len <= size &&
		(size_t)(v - buf) <= size - len);
}

static bool
is_header_of(const struct sl_admin_request *req,
	     const struct sl_admin_header *h)
{
	return h >= req->headers && h < req->headers + req->nheaders;
}

/* Invariant 1 for a complete request of @r bytes. */
static void
check_complete(const char *buf, size_t len, int r,
	       const struct sl_admin_request *req)
{
	size_t size = (size_t)r;

	FUZZ_CHECK(size <= len);
	FUZZ_CHECK(req->status == 0);
	FUZZ_CHECK(req->size == size);
	FUZZ_CHECK(req->body != NULL);
	FUZZ_CHECK(req->body_len <= SL_ADMIN_BODY_MAX);
	FUZZ_CHECK(view_inside(req->body, req->body_len, buf, size));
	FUZZ_CHECK(req->body + req->body_len == buf + size);
	FUZZ_CHECK(req->method_len >= 1 &&
		   req->method_len <= SL_ADMIN_METHOD_MAX);
	FUZZ_CHECK(view_inside(req->method_name, req->method_len, buf, size));
	FUZZ_CHECK(req->target_len >= 1 &&
		   req->target_len <= SL_ADMIN_TARGET_MAX);
	FUZZ_CHECK(view_inside(req->target, req->target_len, buf, size));
	FUZZ_CHECK(req->target[0] == '/');
	FUZZ_CHECK(req->path_len <= req->target_len);
	FUZZ_CHECK(req->version_minor <= 9);
	FUZZ_CHECK(req->nheaders <= SL_ADMIN_HEADERS_MAX);
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct sl_admin_header *h = &req->headers[i];

		FUZZ_CHECK(h->name_len >= 1);
		FUZZ_CHECK(view_inside(h->name, h->name_len, buf, size));
		FUZZ_CHECK(view_inside(h->value, h->value_len, buf, size));
	}
	FUZZ_CHECK(!req->host || is_header_of(req, req->host));
	FUZZ_CHECK(!req->authorization ||
		   is_header_of(req, req->authorization));
	FUZZ_CHECK(req->version_minor == 0 || req->host != NULL);
}

/* The index of @h in @req's headers, or -1 for NULL. */
static long
header_index(const struct sl_admin_request *req,
	     const struct sl_admin_header *h)
{
	return h ? (long)(h - req->headers) : -1;
}

/*
 * Invariant 5: two parses agree field for field.  The parser clears the
 * struct first, so the bytes between the fields agree too; host and
 * authorization point into each struct's own headers and are compared
 * by index.
 */
static bool
requests_equal(const struct sl_admin_request *a,
	       const struct sl_admin_request *b)
{
	const size_t hosts = offsetof(struct sl_admin_request, host);
	const size_t after = offsetof(struct sl_admin_request, body);

	return memcmp(a, b, hosts) == 0 &&
	       memcmp((const char *)a + after, (const char *)b + after,
		      sizeof(*a) - after) == 0 &&
	       header_index(a, a->host) == header_index(b, b->host) &&
	       header_index(a, a->authorization) ==
		       header_index(b, b->authorization);
}

/* Invariants 1, 2, 4 and 5 for one parse of @len bytes at @buf. */
static int
parse_checked(const char *buf, size_t len, struct sl_admin_request *req)
{
	static struct sl_admin_request again;
	int r = sl_admin_parse_request(buf, len, req);

	FUZZ_CHECK(r >= 0 || r == -EBADMSG);
	if (r > 0) {
		check_complete(buf, len, r, req);
	} else if (r == -EBADMSG) {
		FUZZ_CHECK(req->why != NULL && req->why[0] != '\0');
		FUZZ_CHECK(req->status == 400 || req->status == 413 ||
			   req->status == 414 || req->status == 431 ||
			   req->status == 501 || req->status == 505);
	} else {
		FUZZ_CHECK(req->status == 400 || req->status == 413 ||
			   req->status == 414 || req->status == 431);
		FUZZ_CHECK(req->status != 400 || req->method_len == 0);
	}

	FUZZ_CHECK(sl_admin_parse_request(buf, len, &again) == r);
	FUZZ_CHECK(requests_equal(&again, req));
	return r;
}

/* Parse the first @len bytes of @data from a block of exactly that size. */
static int
parse_prefix(const uint8_t *data, size_t len, struct sl_admin_request *req)
{
	char *copy = len ? malloc(len) : NULL;
	int r;

	FUZZ_CHECK(len == 0 || copy != NULL);
	if (len)
		memcpy(copy, data, len);
	r = parse_checked(copy, len, req);
	free(copy);
	return r;
}

/* What invariant 3 compares: the verdict, not the views. */
struct verdict {
	int r;
	int status;
};

static void
check_prefix(const uint8_t *data, size_t k, const struct verdict *whole,
	     bool *decided)
{
	static struct sl_admin_request req;
	int r = parse_prefix(data, k, &req);

	if (r == 0) {
		/* Undecided after a decided prefix: the verdict changed. */
		FUZZ_CHECK(!*decided);
		return;
	}
	*decided = true;
	FUZZ_CHECK(r == whole->r);
	FUZZ_CHECK(req.status == whole->status);
}

/* Invariant 3 over the prefixes of @data, in increasing length. */
static void
check_growth(const uint8_t *data, size_t size, const struct verdict *whole)
{
	bool decided = false;

	if (size <= FUZZ_ALL_PREFIXES) {
		for (size_t k = 0; k < size; k++)
			check_prefix(data, k, whole, &decided);
		return;
	}

	/* Evenly spaced lengths, then the last few before the whole. */
	for (size_t i = 0; i < FUZZ_SAMPLED_PREFIXES; i++)
		check_prefix(data, i * (size - 16) / FUZZ_SAMPLED_PREFIXES,
			     whole, &decided);
	for (size_t k = size - 16; k < size; k++)
		check_prefix(data, k, whole, &decided);
}

static size_t
append(char *out, size_t o, const char *p, size_t n)
{
	if (n)
		memcpy(out + o, p, n);
	return o + n;
}

/* Invariant 6: write @req out plainly and parse it again. */
static void
check_rewrite(const struct sl_admin_request *req)
{
	static struct sl_admin_request back;
	size_t cap = req->size + 16, o = 0;
	char *out = malloc(cap), version[] = "HTTP/1.0\r\n";
	int r;

	FUZZ_CHECK(out != NULL);
	version[7] = (char)('0' + req->version_minor);
	o = append(out, o, req->method_name, req->method_len);
	o = append(out, o, " ", 1);
	o = append(out, o, req->target, req->target_len);
	o = append(out, o, " ", 1);
	o = append(out, o, version, strlen(version));
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct sl_admin_header *h = &req->headers[i];

		o = append(out, o, h->name, h->name_len);
		o = append(out, o, ": ", 2);
		o = append(out, o, h->value, h->value_len);
		o = append(out, o, "\r\n", 2);
	}
	o = append(out, o, "\r\n", 2);
	o = append(out, o, req->body, req->body_len);
	/* Plain form is never longer: it drops whitespace, adds none but
	 * the one space after a colon that was there or not. */
	FUZZ_CHECK(o <= req->size + req->nheaders);
	FUZZ_CHECK(o <= cap);

	r = parse_checked(out, o, &back);
	FUZZ_CHECK(r > 0 && (size_t)r == o);
	FUZZ_CHECK(back.method == req->method);
	FUZZ_CHECK(fuzz_bytes_equal(back.method_name, back.method_len,
				    req->method_name, req->method_len));
	FUZZ_CHECK(fuzz_bytes_equal(back.target, back.target_len, req->target,
				    req->target_len));
	FUZZ_CHECK(back.path_len == req->path_len);
	FUZZ_CHECK(back.version_minor == req->version_minor);
	FUZZ_CHECK(back.nheaders == req->nheaders);
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct sl_admin_header *a = &back.headers[i];
		const struct sl_admin_header *b = &req->headers[i];

		FUZZ_CHECK(fuzz_bytes_equal(a->name, a->name_len, b->name,
					    b->name_len));
		FUZZ_CHECK(fuzz_bytes_equal(a->value, a->value_len, b->value,
					    b->value_len));
	}
	FUZZ_CHECK((back.host == NULL) == (req->host == NULL));
	FUZZ_CHECK(header_index(&back, back.host) ==
		   header_index(req, req->host));
	FUZZ_CHECK(header_index(&back, back.authorization) ==
		   header_index(req, req->authorization));
	FUZZ_CHECK(fuzz_bytes_equal(back.body, back.body_len, req->body,
				    req->body_len));
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sl_admin_request req;
	char *copy = size ? malloc(size) : NULL;
	struct verdict whole;

	FUZZ_CHECK(size == 0 || copy != NULL);
	if (size)
		memcpy(copy, data, size);
	whole.r = parse_checked(copy, size, &req);
	whole.status = req.status;
	if (whole.r > 0)
		check_rewrite(&req);
	free(copy);

	check_growth(data, size, &whole);
	return 0;
}
