/* signal_iplimit.h -- connections per source address of the signaling
 * endpoint (signaling-max-conns-per-ip), so one host cannot hold every
 * connection slot. An IPv4 address (also written as ::ffff:a.b.c.d) counts
 * alone; IPv6 addresses count per /64, the block one subscriber usually
 * gets (RFC 6177), since a single host can pick any address in it.
 *
 * A hash table with a random seed (so chains cannot be aimed at); entries
 * exist only while their count is above zero. Signaling thread only.
 */
#ifndef TURNSTONE_SIGNAL_IPLIMIT_H
#define TURNSTONE_SIGNAL_IPLIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct signal_iplimit;

#define SIGNAL_IPLIMIT_KEY_LEN 9 /* family byte + 8 address bytes */

/* An empty table, or NULL on no memory. */
struct signal_iplimit *signal_iplimit_new(void);

/* Frees t and its entries. NULL is ignored. */
void signal_iplimit_free(struct signal_iplimit *t);

/* Writes the counting key of sa (AF_INET or AF_INET6) into key.
 * Returns 0, or -1 for another family. */
int signal_iplimit_key(const struct sockaddr *sa, uint8_t key[SIGNAL_IPLIMIT_KEY_LEN]);

/* Counts one more connection for key when fewer than max are counted.
 * Returns 0 (counted: call signal_iplimit_put later), -1 when max are
 * already counted, -2 on no memory. */
int signal_iplimit_take(struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN], unsigned max);

/* Counts one connection of key less (after a successful take). */
void signal_iplimit_put(struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN]);

/* Connections counted for key (tests and logs). */
unsigned signal_iplimit_count(const struct signal_iplimit *t, const uint8_t key[SIGNAL_IPLIMIT_KEY_LEN]);

#endif
