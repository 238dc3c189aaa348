/* SPDX-License-Identifier: MIT */
/* Stream connections and listeners: what conn.c and listen.c share. */
#ifndef SLUICE_IO_CONN_INTERNAL_H
#define SLUICE_IO_CONN_INTERNAL_H

#include "io/io_internal.h"
#include "io/net.h"

struct sl_conn {
	int fd;
	int family;
	struct sl__rx rx;
	/* The reader's current buffer (reader only). */
	struct sl__rx_item cur;
	uint32_t cur_off;
	bool has_cur;
	bool have_peer;
	uint64_t rdeadline, wdeadline;
	struct sl_addr peer;
	struct sl_listener *listener;
};

int sl__sock_apply(int fd, int family, const struct sl_sock_opts *o);
struct sl_conn *sl__conn_new(int fd, int family, const struct sl_sock_opts *o);
void sl__close_fd(int fd);
void sl__listener_conn_gone(struct sl_listener *l);

#endif /* SLUICE_IO_CONN_INTERNAL_H */
