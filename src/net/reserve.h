/* reserve.h -- relay ports reserved by EVEN-PORT (R bit) for a later
 * Allocate carrying the RESERVATION-TOKEN (RFC 8656 §7.2, §14.9, §14.10).
 *
 * The follow-up Allocate comes from another client port and so may reach
 * another worker: this is the one table shared between workers, behind a
 * mutex. Only these two rare Allocate variants touch it, never the relay path.
 */
#ifndef TURNSTONE_RESERVE_H
#define TURNSTONE_RESERVE_H

#include <stdint.h>

#include "stun/stun_msg.h"

#define RESERVE_TOKEN_LEN 8
#define RESERVE_LIFETIME 30 /* default seconds a reservation is held (RFC 8656 §7.2:
				 "approximately 30 seconds"); key reservation-lifetime */

/* Holds the bound socket fd (ownership passes to the table) with address
 * addr until now + lifetime (seconds), and writes a fresh random token.
 * Returns 0, or -1 on out of memory / no randomness (fd is then closed). */
int reserve_put(int fd, const struct stun_addr *addr, uint64_t now, uint32_t lifetime,
		uint8_t token[RESERVE_TOKEN_LEN]);

/* Closes the reservations expired at now (seconds): called from a worker's
 * 1-second timer, so an unclaimed port is freed on time even when no other
 * reservation is ever made. Takes the lock only when the table is not empty. */
void reserve_tick(uint64_t now);

/* Takes the reservation for token: returns its fd (ownership passes to the
 * caller) and address, or -1 when there is none or it expired. */
int reserve_take(const uint8_t token[RESERVE_TOKEN_LEN], uint64_t now, struct stun_addr *addr);

/* Closes every held socket (shutdown). */
void reserve_clear(void);

#endif
