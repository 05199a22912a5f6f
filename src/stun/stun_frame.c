/* stun_frame.c -- message boundaries on a TCP/TLS byte stream (RFC 8656 §12.5). */
#include "stun/stun_frame.h"

#include "stun/stun_msg.h"

int stun_frame_next(const uint8_t *buf, size_t avail, struct stun_frame *f)
{
	size_t len;

	if (avail < 4)
		return 0;
	len = ((size_t)buf[2] << 8) | buf[3];
	switch (buf[0] & 0xC0) {
	case 0x00: /* STUN: the length excludes the 20-byte header, and is a multiple of 4 */
		if (len % 4 != 0)
			return -1;
		if (avail >= 8 && ((uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 |
				   buf[7]) != STUN_MAGIC_COOKIE)
			return -1;
		f->msg_len = f->frame_len = STUN_HEADER_LEN + len;
		f->channel_data = 0;
		return 1;
	case 0x40: /* ChannelData, padded to 4 bytes on streams */
		f->msg_len = TURN_CHANNEL_HDR + len;
		f->frame_len = (f->msg_len + 3) & ~(size_t)3;
		f->channel_data = 1;
		return 1;
	default:
		return -1;
	}
}
