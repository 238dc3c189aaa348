/* SPDX-License-Identifier: MIT */
/*
 * Sockets: TCP and Unix stream connections and listeners, UDP and Unix
 * datagram sockets, addresses and name resolution.
 *
 * A connection may be read by one task and written by one task at a time
 * (the two may differ); a listener and a datagram socket may be used by
 * any number of tasks.  Closing waits for the kernel to let go of every
 * buffer and request that refers to the object, so nothing completes into
 * freed memory.
 */
#ifndef SLUICE_IO_NET_H
#define SLUICE_IO_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "io/io.h"

struct sl_context;

/* ---- addresses ---- */

struct sl_addr {
	socklen_t len;
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		struct sockaddr_storage ss;
	} u;
};

/**
 * sl_addr_parse() - parse a numeric address.
 *
 * Accepts "1.2.3.4:80", "[::1]:80", ":80" (every IPv4 address),
 * "unix:/path", "/path" and "@name" (a Linux abstract socket).  Names are
 * not looked up: use sl_resolve() for those.
 *
 * Return: 0, or -EINVAL with nothing written.
 */
int sl_addr_parse(const char *s, struct sl_addr *out);

/* sl_addr_format() - "1.2.3.4:80", "[::1]:80" or "unix:/path". */
const char *sl_addr_format(const struct sl_addr *a, char *buf, size_t len);

/* sl_addr_port() - the port of an IP address, 0 for others. */
uint16_t sl_addr_port(const struct sl_addr *a);

/**
 * sl_resolve() - look a host name up (getaddrinfo), without holding up the
 * processor: the lookup runs in a blocking section (core/runtime.h).
 * @host: a name or numeric address; @port: a number or service name.
 * @out: filled with up to @max addresses, IPv4 first.
 *
 * Return: the number of addresses, or -ENOENT (no such name), -EAGAIN
 * (temporary failure) or another negative errno value.
 */
int sl_resolve(const char *host, const char *port, struct sl_addr *out,
	       size_t max);

/* ---- stream sockets ---- */

struct sl_sock_opts {
	bool nodelay;		/* TCP_NODELAY (default on) */
	int keepalive_s;	/* idle seconds before probes; 0: off */
	int sndbuf, rcvbuf;	/* SO_SNDBUF / SO_RCVBUF; 0: kernel's */
	/* Receive-buffer bytes a connection may hold for its reader before
	 * it stops receiving, so the sender's window closes (default 256
	 * KiB).  Counted in whole buffers (io.h's buf_size), however little
	 * of each the peer filled; the kernel may fill a few more before the
	 * stop takes effect. */
	size_t max_buffered;
};

struct sl_listen_opts {
	int backlog;		/* listen() backlog (default 4096) */
	/* One socket per processor with SO_REUSEPORT, so the kernel spreads
	 * connections over processors (default on; TCP only). */
	bool per_proc;
	/* Open connections allowed at once; the excess is accepted and
	 * closed at once, and counted (default 0: no cap). */
	unsigned max_conns;
	struct sl_sock_opts conn;
};

struct sl_listener;
struct sl_conn;

struct sl_listener_stats {
	uint64_t accepted;
	uint64_t refused;	/* closed because of max_conns */
	uint64_t emfile;	/* accepts that failed for lack of fds */
	uint64_t errors;	/* other accept failures */
	uint64_t open;		/* connections open now */
};

/* Defaults for the option structs (also what NULL means). */
void sl_sock_opts_default(struct sl_sock_opts *o);
void sl_listen_opts_default(struct sl_listen_opts *o);

/**
 * sl_listen() - listen on a TCP or Unix stream address (sl_addr_parse()).
 *
 * Binds and starts accepting at once; accepted connections wait in the
 * listener until sl_listener_accept() takes them.  A Unix path that exists
 * as a socket is replaced.
 */
int sl_listen(const char *addr, const struct sl_listen_opts *opts,
	      struct sl_listener **out);

/** sl_listener_addr() - the bound address (with the port chosen for :0). */
void sl_listener_addr(const struct sl_listener *l, struct sl_addr *out);

/** sl_listener_accept() - the next connection; parks until one arrives. */
int sl_listener_accept(struct sl_context *ctx, struct sl_listener *l,
		       struct sl_conn **out);

void sl_listener_stats_get(const struct sl_listener *l,
			   struct sl_listener_stats *out);

/**
 * sl_listener_close() - stop accepting and release the listener.
 *
 * Tasks parked in sl_listener_accept() return -EBADF.  Connections already
 * accepted stay open.
 */
void sl_listener_close(struct sl_listener *l);

/** sl_connect() - connect to @addr; the deadline comes from @ctx. */
int sl_connect(struct sl_context *ctx, const char *addr,
	       const struct sl_sock_opts *opts, struct sl_conn **out);
int sl_connect_addr(struct sl_context *ctx, const struct sl_addr *addr,
		    const struct sl_sock_opts *opts, struct sl_conn **out);

/**
 * sl_conn_set_deadline() - absolute deadlines for this connection's reads
 * and writes (SL_NO_DEADLINE for none), as in Go's net.Conn.  A read or
 * write still waiting at its deadline returns -ETIMEDOUT; later calls
 * return it at once until the deadline is moved.
 */
void sl_conn_set_deadline(struct sl_conn *c, uint64_t read_deadline,
			  uint64_t write_deadline);

/**
 * sl_conn_recv() - copy up to @len received bytes into @buf.
 *
 * Return: bytes copied (> 0), 0 at the end of the stream, or a negative
 * errno value (-ECONNRESET, -ETIMEDOUT, ...).
 */
ssize_t sl_conn_recv(struct sl_context *ctx, struct sl_conn *c, void *buf,
		     size_t len);

/*
 * Zero-copy receive: borrow the kernel-filled buffer itself.  The reader
 * consumes some bytes of it and hands it back with sl_conn_consume(); the
 * buffer returns to its processor's ring once all of it is consumed.
 */
struct sl_iobuf {
	const char *data;
	size_t len;
};

/**
 * sl_conn_peek() - the received bytes not yet consumed, from the oldest
 * buffer; parks until there are some.
 * Return: 1 with @out set, 0 at the end of the stream, or a negative errno.
 */
int sl_conn_peek(struct sl_context *ctx, struct sl_conn *c,
		 struct sl_iobuf *out);

/* sl_conn_consume() - the reader is done with @n bytes of the last peek. */
void sl_conn_consume(struct sl_conn *c, size_t n);

/* sl_conn_try_peek() - sl_conn_peek() that returns -EAGAIN, not parks. */
int sl_conn_try_peek(struct sl_conn *c, struct sl_iobuf *out);

/**
 * sl_conn_notify() - start @fn(@arg) in a new task once @c has bytes, its
 * end or an error to read; at once if it already has.  One-shot.
 *
 * A server with many mostly idle connections need not keep a task parked
 * on each: the handler reads with sl_conn_try_peek() until -EAGAIN, calls
 * sl_conn_notify() again and returns.  In between, the connection holds
 * neither a task nor a buffer.  Do not mix with a reader parked on @c.
 */
int sl_conn_notify(struct sl_conn *c, void (*fn)(void *arg), void *arg);

/**
 * sl_conn_send() - send all of @buf.
 * Return: @len, or a negative errno value; after an error the number of
 * bytes the peer got is unknown.
 */
ssize_t sl_conn_send(struct sl_context *ctx, struct sl_conn *c,
		     const void *buf, size_t len);

/* sl_conn_sendv() - send all of @iov[0..@n) in as few requests as it takes. */
ssize_t sl_conn_sendv(struct sl_context *ctx, struct sl_conn *c,
		      const struct iovec *iov, int n);

/**
 * sl_conn_send_zc() - sl_conn_send() without copying @buf into the kernel
 * (IORING_OP_SEND_ZC).  Worth it for payloads of tens of kilobytes and
 * more; @buf must stay unchanged until the call returns, which it does
 * once the kernel has let go of it.  Falls back to a copying send where
 * the kernel or socket cannot do it.
 */
ssize_t sl_conn_send_zc(struct sl_context *ctx, struct sl_conn *c,
			const void *buf, size_t len);

/* sl_conn_shutdown() - shut the write side (SHUT_WR) or both (SHUT_RDWR). */
int sl_conn_shutdown(struct sl_context *ctx, struct sl_conn *c, int how);

/*
 * sl_conn_close() - release @c; returns once the kernel holds nothing of it.
 * A task parked reading @c returns -EBADF, perhaps only after this has
 * returned: @c's memory lasts until that reader has left.
 */
void sl_conn_close(struct sl_conn *c);

struct sl_conn_stats {
	uint64_t bytes;		/* received */
	/* Times receiving stopped because the connection held
	 * max_buffered bytes its reader had not consumed; it resumes as
	 * the reader catches up. */
	uint64_t pauses;
};

/* sl_conn_stats_get() - @c's counters; safe from any task. */
void sl_conn_stats_get(const struct sl_conn *c, struct sl_conn_stats *out);

/* sl_conn_fd() - the socket, for setsockopt and the like. */
int sl_conn_fd(const struct sl_conn *c);
void sl_conn_peer(const struct sl_conn *c, struct sl_addr *out);

/* ---- datagram sockets ---- */

struct sl_dgram;

struct sl_dgram_opts {
	int sndbuf, rcvbuf;	/* 0: the kernel's */
	/* Received datagrams a socket may hold before it stops receiving and
	 * lets the kernel drop (default 1024). */
	unsigned max_queued;
};

struct sl_dgram_stats {
	uint64_t received;
	uint64_t truncated;	/* larger than a receive buffer */
	uint64_t dropped;	/* dropped by the kernel (SO_RXQ_OVFL) */
	uint64_t sent;
	uint64_t send_errors;
};

/**
 * sl_dgram_open() - a UDP or Unix datagram socket.
 * @bind_addr: the local address, or NULL for an unbound socket (UDP only:
 *	an ephemeral port on first send).
 * @family_hint: the family for an unbound socket (AF_INET, AF_INET6).
 */
int sl_dgram_open(const char *bind_addr, int family_hint,
		  const struct sl_dgram_opts *opts, struct sl_dgram **out);

void sl_dgram_addr(const struct sl_dgram *d, struct sl_addr *out);

struct sl_datagram {
	const char *data;
	size_t len;
	bool truncated;
	struct sl_addr from;
	/* private: the buffer to hand back */
	uint32_t priv[2];
	void *priv_proc;
};

/**
 * sl_dgram_recv() - the next datagram, in a borrowed buffer that must be
 * handed back with sl_dgram_release().
 * Return: 0, or a negative errno value.
 */
int sl_dgram_recv(struct sl_context *ctx, struct sl_dgram *d,
		  struct sl_datagram *out);
void sl_dgram_release(struct sl_dgram *d, struct sl_datagram *dg);

/**
 * sl_dgram_send() - send one datagram to @to (NULL: the connected peer).
 *
 * A Unix datagram socket whose receiver's queue is full cannot take the
 * datagram: the call parks until the receiver makes room, or until @ctx
 * ends, and then the datagram is not sent.  UDP does not wait: a full
 * receiver drops the datagram and counts it in its `dropped`.
 *
 * Return: @len; -ETIMEDOUT or -ECANCELED (@ctx ended first, nothing sent);
 * or another negative errno value (-ECONNREFUSED, -EMSGSIZE, ...).
 */
ssize_t sl_dgram_send(struct sl_context *ctx, struct sl_dgram *d,
		      const void *buf, size_t len, const struct sl_addr *to);

void sl_dgram_stats_get(const struct sl_dgram *d, struct sl_dgram_stats *out);
void sl_dgram_close(struct sl_dgram *d);

#endif /* SLUICE_IO_NET_H */
