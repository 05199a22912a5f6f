/* stun_frame.h -- finding message boundaries on a byte stream (TCP, TLS).
 *
 * RFC 8656 §12.5 / RFC 8489 §6.2.2: over a stream, STUN messages and
 * ChannelData messages follow each other; a STUN message is 20 + its length
 * field bytes, a ChannelData message 4 + its length rounded up to 4 bytes.
 * Pure code.
 */
#ifndef TURNSTONE_STUN_FRAME_H
#define TURNSTONE_STUN_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Framing verdict for the bytes at the start of a stream buffer. */
struct stun_frame {
	size_t frame_len;  /* bytes the message occupies on the stream (with padding) */
	size_t msg_len;    /* bytes of the message itself (ChannelData without padding) */
	int channel_data;  /* 1 for ChannelData, 0 for STUN */
};

/* Looks at buf[0..avail). Returns 1 and fills *f when the first message's
 * size is known (it may not all be in buf yet: compare f->frame_len with
 * avail), 0 when more bytes are needed to know, -1 when the bytes cannot
 * start a STUN or ChannelData message (the connection must be closed:
 * there is no way to resynchronise a stream). */
int stun_frame_next(const uint8_t *buf, size_t avail, struct stun_frame *f);

#endif
